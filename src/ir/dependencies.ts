/**
 * Stage: ir. Incremental compilation. A compiled proxy remembers the value of every part of the model it read (keys
 * recorded by model/tracking.ts); in the next revision it is reused as is when each of those parts has the same
 * value, and compiled again otherwise. A value is a hash of what the compiler's own lookups return for the key in
 * the new model, so a new policy that would select the proxy, or a service that joins a wildcard scope, changes a
 * value just as an edit does.
 */
import { createHash } from 'node:crypto';
import { serviceByHost, serviceHeadByHost, servicesInNamespace, workloadById } from '../model/index.js';
import { labelsMatch, type MeshModel, type Workload } from '../model/mesh-model.js';
import { destinationRuleFor, rateLimitsFor, virtualServiceFor } from '../model/routing.js';
import { applicable } from '../model/security.js';
import { boundVirtualServices, gatewaysOf } from '../model/gateways.js';
import { telemetryFor } from '../model/telemetry.js';
import { recording, untracked } from '../model/tracking.js';
import { knownUnchangedKeys, unchangedKeys } from './model-diff.js';
import type { Dependencies, DependencyIndex } from './dependency-index.js';

/** Says, from the difference of two models, that a key's value is certainly the same in `now` as in `before`. */
export type HeldOver = (before: MeshModel, now: MeshModel, arg: string, unchanged: (key: string) => boolean) => boolean;

/** Kinds of key defined by later stages (the IR's shared clusters), to keep imports one-way. */
const definitions = new Map<string, { lookup: (model: MeshModel, arg: string) => unknown; heldOver?: HeldOver }>();

/**
 * Defines keys `<kind>:<arg>` whose value is the hash of `lookup(model, arg)`; `heldOver`, if given, spares
 * re-valuing a key it vouches for.
 */
export function defineDependency(
  kind: string,
  lookup: (model: MeshModel, arg: string) => unknown,
  heldOver?: HeldOver,
): void {
  definitions.set(kind, { lookup, ...(heldOver ? { heldOver } : {}) });
}

/** The keys certainly unchanged from `before` to `now`: the model difference's, and the defined kinds' own. */
function unchangedFrom(before: MeshModel, now: MeshModel): (key: string) => boolean {
  const unchanged = unchangedKeys(before, now);
  return (key) => {
    if (unchanged(key)) return true;
    const colon = key.indexOf(':');
    const heldOver = colon > 0 ? definitions.get(key.slice(0, colon))?.heldOver : undefined;
    return heldOver !== undefined && heldOver(before, now, key.slice(colon + 1), unchanged);
  };
}

/**
 * Values derived from a model and shared by proxies (outbound clusters): computed once per model, and carried over
 * from the previous model, as the same object, while their own dependencies hold.
 */
export class DerivedCache<V> {
  private model?: MeshModel;
  /** The model `before`'s entries hold for: each was computed or carried over in it. */
  private previous?: MeshModel;
  private now = new Map<string, { value: V; deps: Dependencies }>();
  private before = new Map<string, { value: V; deps: Dependencies }>();

  get(model: MeshModel, key: string, compute: () => V): V {
    if (model !== this.model) this.rotate(model);
    let entry = this.now.get(key);
    if (!entry) {
      const old = this.before.get(key);
      // What a compile found unchanged from `previous` to `model` need not be valued again.
      const unchanged = this.previous && knownUnchangedKeys(this.previous, model);
      if (old && dependenciesHold(model, old.deps, unchanged)) entry = old;
      else {
        const { value, keys } = recording(compute);
        entry = { value, deps: dependencyValues(model, keys) };
      }
      this.now.set(key, entry);
    }
    return entry.value;
  }

  /**
   * What `get(now, key)` does when `before`'s entry holds, without valuing its dependencies: when every one of
   * them is certainly unchanged, the entry is carried over into `now` (the same object) and this returns true.
   */
  carryOver(key: string, before: MeshModel, now: MeshModel, unchanged: (key: string) => boolean): boolean {
    if (this.model === before) this.rotate(now);
    if (this.model !== now || this.previous !== before) return false;
    if (this.now.has(key)) return this.now.get(key) === this.before.get(key);
    const entry = this.before.get(key);
    if (!entry) return false;
    for (const k of entry.deps.keys()) if (!unchanged(k)) return false;
    this.now.set(key, entry);
    return true;
  }

  private rotate(model: MeshModel): void {
    this.before = this.model ? this.now : new Map();
    this.previous = this.model;
    this.now = new Map();
    this.model = model;
  }
}

export { emptyIndex, updatedIndex, type Dependencies, type DependencyIndex } from './dependency-index.js';

const ABSENT = '-';
const values = new WeakMap<MeshModel, Map<string, string>>();

/** The value of each key in `model`. */
export function dependencyValues(model: MeshModel, keys: Iterable<string>): Dependencies {
  const out = new Map<string, string>();
  for (const k of keys) out.set(k, valueOf(model, k));
  return out;
}

/**
 * Proxies with a dependency whose value differs in `model`; a generator that pauses every few hundred keys. `previous`,
 * the model `index` was valued against, spares re-valuing the keys its difference to `model` shows unchanged.
 */
export function* affectedProxies(
  model: MeshModel,
  index: DependencyIndex,
  previous?: MeshModel,
): Generator<void, Set<string>> {
  const memo = memoOf(model);
  const unchanged = previous ? unchangedFrom(previous, model) : () => false;
  const out = new Set<string>();
  let n = 0;
  for (const chunk of index.chunks) {
    for (const [k, e] of chunk) {
      if (!unchanged(k) && valueOf(model, k, memo) !== e.value) for (const id of e.dependents) out.add(id);
    }
    if (++n % 16 === 0) yield; // ~16 x 50 keys
  }
  return out;
}

/** Whether every dependency has the same value in `model` as when it was recorded. */
export function dependenciesHold(
  model: MeshModel,
  deps: Dependencies,
  unchanged: (key: string) => boolean = () => false,
): boolean {
  const memo = memoOf(model);
  for (const [k, v] of deps) if (!unchanged(k) && valueOf(model, k, memo) !== v) return false;
  return true;
}

function memoOf(model: MeshModel): Map<string, string> {
  let memo = values.get(model);
  if (!memo) values.set(model, (memo = new Map()));
  return memo;
}

function valueOf(model: MeshModel, key: string, memo = memoOf(model)): string {
  let v = memo.get(key);
  if (v === undefined) {
    v = untracked(() => compute(model, key));
    memo.set(key, v);
  }
  return v;
}

function compute(model: MeshModel, key: string): string {
  if (key === 'mesh') return hashOf(model.mesh);
  const colon = key.indexOf(':');
  const kind = key.slice(0, colon);
  const arg = key.slice(colon + 1);
  switch (kind) {
    case 'svc':
      return hashOf(serviceByHost(model, arg));
    case 'svchead':
      return hashOf(serviceHeadByHost(model, arg));
    case 'svcs':
      return digest((arg === '*' ? model.services : servicesInNamespace(model, arg)).map((s) => hashOf(s)).join());
    case 'vs':
      return hashOf(virtualServiceFor(model, arg));
    case 'dr':
      return hashOf(destinationRuleFor(model, arg));
    case 'wl':
      return hashOf(workloadById(model, arg));
    case 'gwvs':
      return hashOf(boundVirtualServices(model, arg));
  }
  const defined = definitions.get(kind);
  if (defined) return hashOf(defined.lookup(model, arg));
  const w = workloadById(model, arg);
  if (!w) return ABSENT;
  const root = model.mesh.rootNamespace;
  // What applies to a workload: a function of the workload, one policy list and the Mesh, all of which keep their
  // identity while unchanged (see buildModel), so the value is remembered per (workload, list, mesh).
  switch (kind) {
    case 'mtls':
      return perWorkload(kind, w, model.security.peerAuthentications, model.mesh, () =>
        hashOf(peerAuthenticationsOf(model, w)),
      );
    case 'authz':
      return perWorkload(kind, w, model.security.authorizationPolicies, model.mesh, () =>
        hashOf(applicable(model.security.authorizationPolicies, w, root)),
      );
    case 'reqauthn':
      return perWorkload(kind, w, model.security.requestAuthentications, model.mesh, () =>
        hashOf(applicable(model.security.requestAuthentications, w, root)),
      );
    case 'rl':
      return perWorkload(kind, w, model.routing.rateLimits, model.mesh, () => hashOf(rateLimitsFor(model, w)));
    case 'tel':
      return perWorkload(kind, w, model.telemetry, model.mesh, () => hashOf(telemetryFor(model, w)));
    case 'gw':
      return perWorkload(kind, w, model.gateways.list, model.mesh, () => hashOf(gatewaysOf(model, w)));
  }
  throw new Error(`bug: unknown dependency key ${key}`);
}

const perWorkloadValues = new WeakMap<object, WeakMap<object, WeakMap<object, Map<string, string>>>>();

function perWorkload(kind: string, w: object, list: object, mesh: object, compute: () => string): string {
  let byList = perWorkloadValues.get(w);
  if (!byList) perWorkloadValues.set(w, (byList = new WeakMap()));
  let byMesh = byList.get(list);
  if (!byMesh) byList.set(list, (byMesh = new WeakMap()));
  let byKind = byMesh.get(mesh);
  if (!byKind) byMesh.set(mesh, (byKind = new Map()));
  let v = byKind.get(kind);
  if (v === undefined) byKind.set(kind, (v = compute()));
  return v;
}

/** Every PeerAuthentication mtlsModeFor may consult for the workload. */
function peerAuthenticationsOf(model: MeshModel, w: Workload): unknown[] {
  const root = model.mesh.rootNamespace;
  return model.security.peerAuthentications.filter((p) =>
    p.spec.selector
      ? p.namespace === w.namespace && labelsMatch(p.spec.selector, w.labels)
      : p.namespace === w.namespace || p.namespace === root,
  );
}

/**
 * Content hash of a model value. Origins' revisions are left out: an unchanged line in a new revision is the same
 * input. Objects of unchanged files keep their identity across revisions, so hashes are memoized per object.
 */
const hashes = new WeakMap<object, string>();

function hashOf(value: unknown): string {
  if (value === undefined) return ABSENT;
  if (typeof value !== 'object' || value === null) return digest(JSON.stringify(value));
  // A fresh list of long-lived objects (the policies that apply to a workload): its elements' hashes.
  if (Array.isArray(value)) return `[${value.map(hashOf).join()}]`;
  let h = hashes.get(value);
  if (h === undefined) {
    h = digest(JSON.stringify(value, (k, v) => (k === 'revision' ? undefined : v)));
    hashes.set(value, h);
  }
  return h;
}

function digest(text: string): string {
  return createHash('sha1').update(text).digest('base64');
}
