/**
 * The whole policy compiler, the same in `chancery check`, `chancery render` and the server:
 * source -> parse -> decode -> model -> per-proxy IR -> Envoy resources. A revision with any error yields no
 * proxies at all (it is rejected whole).
 */
import { hasErrors, sortDiagnostics, type Diagnostic } from './diag/diagnostic.js';
import { compileProxy } from './ir/compile.js';
import type { ProxyIR } from './ir/types.js';
import { buildModel } from './model/build.js';
import type { MeshModel } from './model/mesh-model.js';
import { decodeDocuments } from './policy/decode.js';
import { parseFile, type ParsedDocument } from './policy/source-map.js';
import type { PolicySource } from './source/source-file.js';
import { translateProxy, type ResourceSet } from './xds/translate.js';

export interface CompiledProxy {
  ir: ProxyIR;
  resources: ResourceSet;
}

export interface CompileResult {
  revision: string;
  ok: boolean;
  diagnostics: Diagnostic[];
  model?: MeshModel;
  /** By proxy id (`namespace/name`), sorted. Empty when the revision has errors. */
  proxies: Map<string, CompiledProxy>;
}

export function compileSource(source: PolicySource, sourceDiagnostics: readonly Diagnostic[] = []): CompileResult {
  const diags: Diagnostic[] = [...sourceDiagnostics];
  const docs: ParsedDocument[] = [];
  for (const file of source.files) {
    const parsed = parseFile(file, source.revision);
    diags.push(...parsed.diagnostics);
    docs.push(...parsed.value);
  }
  const decoded = decodeDocuments(docs);
  diags.push(...decoded.diagnostics);
  const model = buildModel(decoded.value, source.revision);
  diags.push(...model.diagnostics);
  const diagnostics = sortDiagnostics(diags);
  const proxies = new Map<string, CompiledProxy>();
  const ok = !hasErrors(diagnostics);
  if (ok) {
    for (const w of model.value.workloads) {
      const ir = compileProxy(model.value, w);
      proxies.set(w.id, { ir, resources: translateProxy(ir) });
    }
  }
  return { revision: source.revision, ok, diagnostics, model: model.value, proxies };
}
