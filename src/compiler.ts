/**
 * The whole policy compiler, the same in `chancery check`, `chancery render` and the server:
 * source -> parse -> decode -> model -> per-proxy IR -> Envoy resources. A revision with any error yields no
 * proxies at all (it is rejected whole). Instances registered into WorkloadGroups are one more input.
 */
import { hasErrors, sortDiagnostics, type Diagnostic, type Origin } from './diag/diagnostic.js';
import { compileProxy } from './ir/compile.js';
import { affectedProxies, dependencyValues, updatedIndex, type Dependencies, type DependencyIndex } from './ir/dependencies.js';
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
  /** How many proxies were compiled; the others were reused from the previous result. */
  compiled: number;
  /** What the proxies depend on, for the next revision's compile. */
  index: DependencyIndex;
}

/**
 * Compiles a revision. With `previous` (the last accepted result), a proxy none of whose dependencies changed is
 * reused from it instead of compiled again: a change costs what it affects, not the size of the mesh.
 */
export function compileSource(
  source: PolicySource,
  sourceDiagnostics: readonly Diagnostic[] = [],
  previous?: CompileResult,
  registered: readonly RegisteredInstance[] = [],
): CompileResult {
  return runSteps(compileSteps(source, sourceDiagnostics, previous, registered));
}

/**
 * The same compile, giving the event loop a turn whenever it has worked for `sliceMs`: a server keeps answering
 * xDS requests and ACKs while a large revision compiles.
 */
export function compileSourceInSlices(
  source: PolicySource,
  sourceDiagnostics: readonly Diagnostic[] = [],
  previous?: CompileResult,
  registered: readonly RegisteredInstance[] = [],
  sliceMs = 10,
): Promise<CompileResult> {
  return runStepsInSlices(compileSteps(source, sourceDiagnostics, previous, registered), sliceMs);
}

/** The compile as a sequence of steps; it yields between steps where pausing is safe. */
function* compileSteps(
  source: PolicySource,
  sourceDiagnostics: readonly Diagnostic[],
  previous: CompileResult | undefined,
  registered: readonly RegisteredInstance[],
): Generator<void, CompileResult> {
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
  const model = yield* buildModelSteps(decoded.value, source.revision, previous?.model, registered);
  diags.push(...model.diagnostics);
  const diagnostics = sortDiagnostics(diags.map((d) => atRevision(d, source.revision)));
  const proxies = new Map<string, CompiledProxy>();
  const ok = !hasErrors(diagnostics);
  let compiled = 0;
  let index: DependencyIndex = { values: new Map(), dependents: new Map() };
  if (ok) {
    const m = model.value;
    yield;
    const affected = previous ? yield* affectedProxies(m, previous.index) : undefined;
    const changed = new Map<string, { old?: Dependencies; now?: Dependencies }>();
    for (const w of m.workloads) {
      yield;
      const prev = previous?.proxies.get(w.id);
      if (prev && !affected!.has(w.id)) {
        proxies.set(w.id, prev.ir.revision === m.revision ? prev : { ...prev, ir: { ...prev.ir, revision: m.revision } });
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
  return { revision: source.revision, ok, diagnostics, model: model.value, proxies, compiled, index };
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
    ...(d.related ? { related: d.related.map((r) => ({ ...r, ...(r.location ? { location: restamp(r.location) } : {}) })) } : {}),
  } as Diagnostic;
}
