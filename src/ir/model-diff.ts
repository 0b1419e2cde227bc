/**
 * Stage: ir. Which dependency keys (see model/tracking.ts) certainly have the same value in a model as in the model
 * before it, told from identities alone: buildModel keeps unchanged services, workloads, policy lists and the Mesh
 * as the previous model's objects. A revision then re-values only the keys that may have changed instead of every
 * key of the mesh. "Certainly" is the rule: a key this cannot decide is re-valued, because a key wrongly taken as
 * unchanged leaves a proxy with old configuration (an old AuthorizationPolicy, say).
 */
import { serviceByHost, workloadById } from '../model/index.js';
import { labelsMatch } from '../model/mesh-model.js';
import type { MeshModel } from '../model/mesh-model.js';
import type { Scoped } from '../model/security.js';
import { untracked } from '../model/tracking.js';

/** How a per-workload policy list changed: not at all, by these policies (added or removed), or unknowably. */
type ListChange = 'same' | 'other' | { selected: Set<string> };

/** A predicate on keys: true when the key's value in `now` is the one it had in `before`. */
export function unchangedKeys(before: MeshModel, now: MeshModel): (key: string) => boolean {
  let byBefore = diffs.get(now);
  if (!byBefore) diffs.set(now, (byBefore = new WeakMap()));
  let pred = byBefore.get(before);
  if (!pred) byBefore.set(before, (pred = untracked(() => diff(before, now))));
  return pred;
}

/** The predicate for (before, now) if a compile already computed it; a pure function of the two models. */
export function knownUnchangedKeys(before: MeshModel, now: MeshModel): ((key: string) => boolean) | undefined {
  return diffs.get(now)?.get(before);
}

/** By the newer model, then the older; weak both ways, so a model's predicate never keeps an older model alive. */
const diffs = new WeakMap<MeshModel, WeakMap<MeshModel, (key: string) => boolean>>();

function diff(before: MeshModel, now: MeshModel): (key: string) => boolean {
  const meshSame = before.mesh === now.mesh;
  const workloads = changedIds(
    before.workloads,
    now.workloads,
    (w) => w.id,
    (m, id) => workloadById(m, id),
    before,
  );
  const hosts = changedIds(
    before.services,
    now.services,
    (s) => s.host,
    (m, h) => serviceByHost(m, h),
    before,
  );
  const namespaces = new Set<string>();
  for (const h of hosts) {
    for (const m of [before, now]) {
      const s = serviceByHost(m, h);
      if (s) namespaces.add(s.namespace);
    }
  }
  const virtualServices = changedKeys(before.routing.virtualServices, now.routing.virtualServices);
  const destinationRules = changedKeys(before.routing.destinationRules, now.routing.destinationRules);
  // Authorization and request authentication apply the policies that select the workload (`applicable`); the
  // other lists' values are only known to be functions of (workload, list, Mesh) (see ir/dependencies.ts).
  const lists: Record<string, ListChange> = {
    authz: selectedChange(before.security.authorizationPolicies, now.security.authorizationPolicies, now),
    reqauthn: selectedChange(before.security.requestAuthentications, now.security.requestAuthentications, now),
    mtls: before.security.peerAuthentications === now.security.peerAuthentications ? 'same' : 'other',
    rl: before.routing.rateLimits === now.routing.rateLimits ? 'same' : 'other',
    tel: before.telemetry === now.telemetry ? 'same' : 'other',
    gw: before.gateways.list === now.gateways.list ? 'same' : 'other',
  };
  return (key) => {
    if (key === 'mesh') return meshSame;
    const colon = key.indexOf(':');
    const kind = key.slice(0, colon);
    const arg = key.slice(colon + 1);
    switch (kind) {
      case 'svc':
      case 'svchead':
        return !hosts.has(arg);
      case 'svcs':
        return arg === '*' ? hosts.size === 0 : !namespaces.has(arg);
      case 'wl':
        return !workloads.has(arg);
      case 'vs':
        return !virtualServices.has(arg);
      case 'dr':
        return !destinationRules.has(arg);
    }
    const change = lists[kind];
    if (change === undefined || !meshSame || workloads.has(arg)) return false;
    if (change === 'same' || change === 'other') return change === 'same';
    // The sorted subset of the list selecting the workload is the same objects unless a changed policy selects it.
    return !change.selected.has(arg);
  };
}

/**
 * Ids of the workloads of `model` that any of `policies` may select: at least those `applicable` gives it to. A
 * policy selects in its own namespace, a root-namespace one in every namespace; without a selector (or an empty
 * one, which `applicable` indexes like none) it applies to all of that.
 */
function selectedBy(policies: readonly Scoped<{ selector?: Record<string, string> }>[], model: MeshModel): Set<string> {
  const root = model.mesh.rootNamespace;
  const ids = new Set<string>();
  for (const p of policies) {
    const selector = p.spec.selector;
    const scope = p.namespace === root ? model.workloads : model.workloads.filter((w) => w.namespace === p.namespace);
    const pool =
      selector && Object.keys(selector).length > 0 ? scope.filter((w) => labelsMatch(selector, w.labels)) : scope;
    for (const w of pool) ids.add(w.id);
  }
  return ids;
}

/** Keys whose value differs between the two maps (changed, added or removed). */
function changedKeys<V>(before: ReadonlyMap<string, V>, now: ReadonlyMap<string, V>): Set<string> {
  const out = new Set<string>();
  if (before === now) return out;
  for (const [k, v] of now) if (before.get(k) !== v) out.add(k);
  for (const k of before.keys()) if (!now.has(k)) out.add(k);
  return out;
}

/** Ids whose object differs between the two lists (changed, added or removed). */
function changedIds<T>(
  before: readonly T[],
  now: readonly T[],
  id: (x: T) => string,
  lookup: (m: MeshModel, id: string) => T | undefined,
  beforeModel: MeshModel,
): Set<string> {
  const out = new Set<string>();
  if (before === now) return out;
  const ids = new Set<string>();
  for (const x of now) {
    const k = id(x);
    ids.add(k);
    if (lookup(beforeModel, k) !== x) out.add(k);
  }
  for (const x of before) if (!ids.has(id(x))) out.add(id(x));
  return out;
}

function selectedChange<T extends Scoped<{ selector?: Record<string, string> }>>(
  before: readonly T[],
  now: readonly T[],
  model: MeshModel,
): ListChange {
  if (before === now) return 'same';
  const inNow = new Set<T>(now);
  const inBefore = new Set<T>(before);
  const changed = [...now.filter((p) => !inBefore.has(p)), ...before.filter((p) => !inNow.has(p))];
  // Workloads unchanged between the models (the only ones this decides) are the same objects in both.
  return { selected: selectedBy(changed, model) };
}
