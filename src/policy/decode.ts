/**
 * Stage: decode. Parsed documents -> typed policy objects. Reads the common envelope (apiVersion, kind, metadata)
 * and hands `spec` to the kind's decoder from the registry. Output is sorted by kind, namespace and name.
 */
import { Diagnostics, type Diagnostic, type Origin, type Result } from '../diag/diagnostic.js';
import { findKind, KINDS, PLANNED_KINDS } from './kinds/index.js';
import { MapReader } from './reader.js';
import type { ParsedDocument } from './source-map.js';
import { objectRef, type PolicyObject } from './types.js';
import { DNS_LABEL } from './kinds/common.js';

/**
 * Decoding is a pure function of the document, and unchanged files yield the same document objects (see
 * parseFile), so each document is decoded once; its policy object keeps its identity across revisions.
 */
const decoded = new WeakMap<ParsedDocument, { object: PolicyObject | undefined; diagnostics: Diagnostic[] }>();

export function decodeDocuments(docs: readonly ParsedDocument[]): Result<PolicyObject[]> {
  const diags = new Diagnostics();
  const out: PolicyObject[] = [];
  for (const doc of docs) {
    let hit = decoded.get(doc);
    if (!hit) {
      const own = new Diagnostics();
      hit = { object: decodeDocument(doc, own), diagnostics: own.items };
      decoded.set(doc, hit);
    }
    diags.addAll(hit.diagnostics);
    if (hit.object) out.push(hit.object);
  }
  out.sort(compareObjects);
  return { value: out, diagnostics: diags.items };
}

function decodeDocument(doc: ParsedDocument, diags: Diagnostics): PolicyObject | undefined {
  if (!doc.root || doc.root.kind !== 'map') {
    diags.report('CH0208', `document ${doc.index + 1} is not a mapping with apiVersion, kind, metadata and spec`, {
      location: doc.at,
    });
    return undefined;
  }
  const envelopeCtx = { diags, object: `document ${doc.index + 1}` };
  const r = new MapReader(doc.root, envelopeCtx, '');
  const apiVersion = r.str('apiVersion', { required: true });
  const kind = r.str('kind', { required: true });
  if (apiVersion === undefined || kind === undefined) return undefined;
  const decoder = findKind(apiVersion, kind);
  if (!decoder) {
    const group = apiVersion.slice(0, apiVersion.lastIndexOf('/'));
    const planned = PLANNED_KINDS[`${group}/${kind}`];
    if (planned) {
      diags.report('CH0207', `${kind} (${apiVersion}) is not supported yet: ${planned}`, {
        location: r.loc('kind'),
        path: 'kind',
      });
    } else {
      const known = KINDS.filter((k) => k.kind === kind);
      const hint =
        known.length > 0 ? ` (use apiVersion ${known.map((k) => `${k.group}/${k.versions[0]}`).join(' or ')})` : '';
      diags.report('CH0206', `unknown kind ${kind} in ${apiVersion}${hint}`, { location: r.loc('kind'), path: 'kind' });
    }
    return undefined;
  }
  const meta = r.map('metadata', { required: true });
  const name = meta?.str('name', {
    required: true,
    pattern: /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
    patternHint: 'a DNS-1123 name',
  });
  const nsRaw = meta?.str('namespace', { pattern: DNS_LABEL, patternHint: 'a DNS label' });
  const labels = meta?.strMap('labels') ?? {};
  const annotations = meta?.strMap('annotations') ?? {};
  const annotationsAt = meta?.has('annotations') ? meta.loc('annotations') : (meta?.at ?? doc.at);
  meta?.done();
  if (!decoder.namespaced && nsRaw !== undefined) meta?.report('CH0204', 'namespace', `${kind} is not namespaced`);
  if (name === undefined) return undefined;
  const namespace = decoder.namespaced ? (nsRaw ?? 'default') : '';
  const object = objectRef(kind, { namespace, name });
  const specNode = r.raw('spec');
  const spec = MapReader.of(specNode, { diags, object }, 'spec');
  const at: Record<string, Origin> = { metadata: r.loc('metadata') };
  if (spec) at.spec = spec.at;
  r.unsupported(['status'], 'is ignored by Chancery; remove it');
  r.done();
  // Checked before the kind's decoder runs: several return undefined for a missing spec, which dropped the object.
  if (specNode === undefined && decoder.requiresSpec) {
    diags.report('CH0203', 'spec: required field is missing', { location: doc.at, path: 'spec', object });
    return undefined;
  }
  if (specNode !== undefined && spec === undefined) return undefined; // not a mapping: reported by MapReader.of
  const before = diags.items.length;
  const decodeMeta = {
    namespace,
    annotations,
    annotationsAt,
    report: (code: 'CH0204', key: string, message: string) =>
      diags.report(code, `metadata.annotations["${key}"]: ${message}`, {
        location: annotationsAt,
        path: `metadata.annotations.${key}`,
        object,
      }),
  };
  const value = decoder.decode(spec, at, decodeMeta);
  const specFailed = diags.items.slice(before).some((d) => d.severity === 'error');
  if (value === undefined && !specFailed) {
    // Every kind's contract is a value or an error; never drop an object silently.
    diags.report('CH0204', 'spec: could not be read', { location: spec?.at ?? doc.at, path: 'spec', object });
  }
  if (value === undefined || specFailed) return undefined;
  return {
    kind: decoder.kind,
    apiVersion,
    meta: { name, namespace, labels },
    origin: doc.at,
    at,
    spec: value,
  } as PolicyObject;
}

const sortKeys = new WeakMap<PolicyObject, string>();

function sortKey(o: PolicyObject): string {
  let k = sortKeys.get(o);
  if (k === undefined)
    sortKeys.set(o, (k = `${o.kind}\0${o.meta.namespace}\0${o.meta.name}\0${o.origin.file}\0${o.origin.line}`));
  return k;
}

function compareObjects(a: PolicyObject, b: PolicyObject): number {
  const ka = sortKey(a);
  const kb = sortKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
