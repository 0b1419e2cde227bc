/**
 * The whole policy compiler, the one path of `chancery check`, `render`, `bootstrap`, the goldens and the server:
 * source -> parse -> decode -> model -> per-proxy IR -> Envoy resources -> strictly encoded snapshots. Encoding is
 * part of compiling, so a revision the server would refuse to push is refused by `check` too. A revision with any
 * error yields no proxies at all (it is rejected whole). Instances registered into WorkloadGroups are
 * one more input.
 */
import { Diagnostics, hasErrors, sortDiagnostics, type Diagnostic, type Origin } from './diag/diagnostic.js';
import { checkGatewayCredentials, type CredentialLookup } from './model/gateways.js';
import { checkOriginationCredentials } from './model/origination-credentials.js';
import { ResourceCache, ResourceEncodeError } from './snapshot/resource-cache.js';
import { buildSnapshot, type Snapshot } from './snapshot/snapshot.js';
import { compileProxy } from './ir/compile.js';
import {
  affectedProxies,
  dependencyValues,
  emptyIndex,
  updatedIndex,
  type Dependencies,
  type DependencyIndex,
} from './ir/dependencies.js';
import type { ProxyIR } from './ir/types.js';
import { buildModelSteps } from './model/build.js';
import type { RegisteredInstance } from './model/groups.js';
import type { MeshModel } from './model/mesh-model.js';
import { recording } from './model/tracking.js';
import { decodeDocuments } from './policy/decode.js';
import { parseFile, type ParsedDocument } from './policy/source-map.js';
import type { PolicySource } from './source/source-file.js';
import { runSteps, runStepsInSlices } from './util/steps.js';
import { translateProxy, type ResourceSet } from './xds/translate.js';
import { messageName } from './xds/type-urls.js';

export interface CompiledProxy {
  ir: ProxyIR;
  resources: ResourceSet;
  /** What of the model it was compiled from; unchanged dependencies let the next revision reuse it. */
  dependencies: Dependencies;
}

export interface CompileResult {
  revision: string;
  ok: boolean;
  diagnostics: Diagnostic[];
  model?: MeshModel;
  /** By proxy id (`namespace/name`), sorted. Empty when the revision has errors. */
  proxies: Map<string, CompiledProxy>;
  /** Per proxy, its resources encoded (strictly) into a snapshot, without secrets. Empty when rejected. */
  snapshots: Map<string, Snapshot>;
  /** The shared encodings (serialize once, fan out); the next revision's compile reuses them. */
  cache: ResourceCache;
  /** Of the compile, how long encoding the snapshots took. */
  encodeMs: number;
  /** How many proxies were compiled; the others were reused from the previous result. */
  compiled: number;
  /** What the proxies depend on, for the next revision's compile. */
  index: DependencyIndex;
}

export interface CompileOptions {
  /**
   * Checks the TLS credentials Gateways and DestinationRules name (the server's --credentials-dir; `check
   * --credentials-dir`). Without it credentials are not looked at: they live outside the policy repository, so CI
   * may not have them.
   */
  credentials?: CredentialLookup;
  /** Instances registered into WorkloadGroups: they join as WorkloadEntries of their groups. */
  registered?: readonly RegisteredInstance[];
}

/**
 * Compiles a revision. With `previous` (the last accepted result), a proxy none of whose dependencies changed is
 * reused from it instead of compiled again: a change costs what it affects, not the size of the mesh.
 */
export function compileSource(
  source: PolicySource,
  sourceDiagnostics: readonly Diagnostic[] = [],
  previous?: CompileResult,
  options: CompileOptions = {},
): CompileResult {
  return runSteps(compileSteps(source, sourceDiagnostics, previous, options));
}

/**
 * The same compile, giving the event loop a turn whenever it has worked for `sliceMs`: a server keeps answering
 * xDS requests and ACKs while a large revision compiles.
 */
export function compileSourceInSlices(
  source: PolicySource,
  sourceDiagnostics: readonly Diagnostic[] = [],
  previous?: CompileResult,
  options: CompileOptions & { sliceMs?: number } = {},
): Promise<CompileResult> {
  return runStepsInSlices(compileSteps(source, sourceDiagnostics, previous, options), options.sliceMs ?? 10);
}

let compiles = 0;

/** How many revisions this process has compiled: writing bootstraps or answering status must not add any. */
export function compileCount(): number {
  return compiles;
}

/** The compile as a sequence of steps; it yields between steps where pausing is safe. */
function* compileSteps(
  source: PolicySource,
  sourceDiagnostics: readonly Diagnostic[],
  previous: CompileResult | undefined,
  options: CompileOptions,
): Generator<void, CompileResult> {
  compiles++;
  const diags: Diagnostic[] = [...sourceDiagnostics];
  const docs: ParsedDocument[] = [];
  for (const file of source.files) {
    const parsed = parseFile(file, source.revision);
    diags.push(...parsed.diagnostics);
    docs.push(...parsed.value);
    yield;
  }
  const decoded = decodeDocuments(docs);
  diags.push(...decoded.diagnostics);
  yield;
  // Registered instances join as WorkloadEntries of their groups: the same model, the same compile.
  const model = yield* buildModelSteps(decoded.value, source.revision, previous?.model, options.registered ?? []);
  diags.push(...model.diagnostics);
  if (options.credentials) {
    const own = new Diagnostics();
    checkGatewayCredentials(model.value, options.credentials, own);
    checkOriginationCredentials(model.value, options.credentials, own);
    diags.push(...own.items);
  }
  const diagnostics = sortDiagnostics(diags.map((d) => atRevision(d, source.revision)));
  const proxies = new Map<string, CompiledProxy>();
  const ok = !hasErrors(diagnostics);
  let compiled = 0;
  let index: DependencyIndex = emptyIndex();
  if (ok) {
    const m = model.value;
    yield;
    const affected = previous ? yield* affectedProxies(m, previous.index, previous.model) : undefined;
    const changed = new Map<string, { old?: Dependencies; now?: Dependencies }>();
    for (const w of m.workloads) {
      yield;
      const prev = previous?.proxies.get(w.id);
      if (prev && !affected!.has(w.id)) {
        proxies.set(w.id, prev);
        continue;
      }
      const { value: ir, keys } = recording(() => compileProxy(m, w));
      const dependencies = dependencyValues(m, keys);
      proxies.set(w.id, { ir, resources: translateProxy(ir), dependencies });
      changed.set(w.id, { ...(prev ? { old: prev.dependencies } : {}), now: dependencies });
      compiled++;
    }
    for (const [id, p] of previous?.proxies ?? []) if (!proxies.has(id)) changed.set(id, { old: p.dependencies });
    index = updatedIndex(previous?.index, changed);
  }
  const cache = previous?.cache ?? new ResourceCache();
  const t0 = performance.now();
  const none = { snapshots: new Map<string, Snapshot>(), errors: [] };
  const encoded = ok ? yield* encodeSteps(source.revision, proxies, cache, previous) : none;
  const encodeMs = performance.now() - t0;
  const refused = encoded.errors.length > 0; // rejected whole, like any other error
  return {
    revision: source.revision,
    ok: ok && !refused,
    diagnostics: refused ? sortDiagnostics([...diagnostics, ...encoded.errors]) : diagnostics,
    model: model.value,
    proxies: refused ? new Map() : proxies,
    snapshots: refused ? new Map() : encoded.snapshots,
    cache,
    encodeMs,
    compiled,
    index: refused ? emptyIndex() : index,
  };
}

/**
 * Encodes each proxy's resources through the strict codec into its snapshot; a proxy whose resources are reused
 * from `previous` keeps its snapshot (relabelled). What the codec refuses becomes a diagnostic at the policy that
 * produced it, once per distinct resource.
 */
function* encodeSteps(
  revision: string,
  proxies: ReadonlyMap<string, CompiledProxy>,
  cache: ResourceCache,
  previous: CompileResult | undefined,
): Generator<void, { snapshots: Map<string, Snapshot>; errors: Diagnostic[] }> {
  const snapshots = new Map<string, Snapshot>();
  const errors = new Map<string, Diagnostic>();
  for (const [id, p] of proxies) {
    yield;
    const before = previous?.snapshots.get(id);
    if (before && previous!.proxies.get(id)?.resources === p.resources) {
      snapshots.set(id, before.revision === revision ? before : { ...before, revision });
      continue;
    }
    try {
      snapshots.set(id, buildSnapshot(id, revision, p.resources, cache));
    } catch (err) {
      if (!(err instanceof ResourceEncodeError)) throw err;
      const key = `${err.typeUrl}\0${err.resourceName}\0${err.shape.path}`;
      if (!errors.has(key)) errors.set(key, encodeDiagnostic(err, revision));
    }
  }
  // A cache new to this compile holds only what these snapshots use; sweeping it would find nothing to drop.
  if (errors.size === 0 && previous) cache.sweep(() => snapshots.values());
  else if (errors.size === 0) cache.allInUse();
  return { snapshots, errors: [...errors.values()] };
}

function encodeDiagnostic(err: ResourceEncodeError, revision: string): Diagnostic {
  const [first, ...rest] = err.origins.map((o) => ({ ...o, revision }));
  const type = messageName(err.typeUrl);
  const prefix = `${type} ${err.resourceName}`; // how resource-cache.ts names the root of the field path
  const at = err.shape.path;
  const field = at.startsWith(prefix) ? at.slice(prefix.length).replace(/^\./, '') : at;
  const resource = `the Envoy ${type.slice(type.lastIndexOf('.') + 1)} "${err.resourceName}"`;
  return {
    code: 'CH0204',
    severity: 'error',
    message: `${resource} built from this policy is invalid: ${field}: ${err.shape.reason}`,
    ...(first ? { location: first } : {}),
    ...(rest.length > 0 ? { related: rest.map((location) => ({ message: 'and from the policy', location })) } : {}),
  };
}

/**
 * Diagnostics of unchanged files come from the parse and decode caches with the revision at which their text was
 * first read; a report about this revision names this revision.
 */
function atRevision(d: Diagnostic, revision: string): Diagnostic {
  const stale = (o: Origin | undefined) => o?.revision !== undefined && o.revision !== revision;
  if (!stale(d.location) && !d.related?.some((r) => stale(r.location))) return d;
  const restamp = (o: Origin | undefined) => (o && stale(o) ? { ...o, revision } : o);
  return {
    ...d,
    ...(d.location ? { location: restamp(d.location) } : {}),
    ...(d.related
      ? { related: d.related.map((r) => ({ ...r, ...(r.location ? { location: restamp(r.location) } : {}) })) }
      : {}),
  } as Diagnostic;
}
