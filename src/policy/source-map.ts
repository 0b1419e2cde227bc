/**
 * Stage: parse. The only module that touches yaml@2's node API. Turns a file's text into a list of documents whose
 * every node carries its position (file:line:column), so later stages can point at the exact line of a mistake.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node as YamlNode } from 'yaml';
import { Diagnostics, type Origin, type Result } from '../diag/diagnostic.js';
import type { SourceFile } from '../source/source-file.js';

/** A YAML node reduced to plain data plus positions. */
export type PNode = PMap | PSeq | PScalar;

export interface PMap {
  kind: 'map';
  at: Origin;
  entries: { key: string; keyAt: Origin; value: PNode }[];
}
export interface PSeq {
  kind: 'seq';
  at: Origin;
  items: PNode[];
}
export interface PScalar {
  kind: 'scalar';
  at: Origin;
  value: string | number | boolean | null;
}

export interface ParsedDocument {
  file: string;
  /** 0-based index of the document in its file. */
  index: number;
  at: Origin;
  root: PNode | null;
}

const MAX_DOCUMENTS_PER_FILE = 10_000;
const MAX_DEPTH = 64;
/** Nodes per document after alias expansion: bounds "billion laughs" documents. */
const MAX_NODES = 200_000;

/**
 * yaml@2's parse is most of the cost of a compile, and most revisions change a few files. So the whole result of
 * a file (documents and diagnostics) is kept per path and reused while the file's text is unchanged: unchanged
 * files yield the very same document objects, which lets later stages cache by identity too. Their origins keep
 * the revision at which that text was first read, which still names the same line.
 */
const parseCache = new Map<string, { text: string; result: Result<ParsedDocument[]> }>();
const PARSE_CACHE_MAX_FILES = 50_000;

/** Parses every document of a file. YAML errors are diagnostics; a file with an error yields no documents. */
export function parseFile(file: SourceFile, revision: string): Result<ParsedDocument[]> {
  const hit = parseCache.get(file.path);
  if (hit && hit.text === file.text) return hit.result;
  const result = parseText(file, revision);
  if (parseCache.size >= PARSE_CACHE_MAX_FILES) parseCache.clear();
  parseCache.set(file.path, { text: file.text, result });
  return result;
}

function parseText(file: SourceFile, revision: string): Result<ParsedDocument[]> {
  const diags = new Diagnostics();
  const lc = new LineCounter();
  const parsed = parseAllDocuments(file.text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, strict: true });
  const list: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const pos = (offset: number): Origin => {
    const p = lc.linePos(offset);
    return { file: file.path, line: p.line, column: p.col, revision };
  };
  // A stream that is not a list of documents (e.g. an empty source) parses to an EmptyStream.
  let failed = false;
  for (const doc of list) {
    for (const err of [...doc.errors, ...doc.warnings.filter((w) => w.code === 'DUPLICATE_KEY')]) {
      failed = true;
      diags.report('CH0102', err.message.split('\n')[0], { location: pos(err.pos[0]) });
    }
  }
  if (list.length > MAX_DOCUMENTS_PER_FILE) {
    diags.report('CH0104', `more than ${MAX_DOCUMENTS_PER_FILE} documents in one file`, { location: pos(0) });
    failed = true;
  }
  if (failed) return { value: [], diagnostics: diags.items };

  const out: ParsedDocument[] = [];
  list.forEach((doc, index) => {
    const contents = doc.contents as YamlNode | null;
    if (contents === null || (isScalar(contents) && contents.value === null)) return; // empty document
    let nodes = 0;
    let exploded = false;
    const convert = (node: unknown, depth: number): PNode => {
      const n = node as YamlNode;
      const at = pos(n.range?.[0] ?? 0);
      if (depth > MAX_DEPTH) {
        diags.report('CH0102', `nesting deeper than ${MAX_DEPTH} levels`, { location: at });
        return { kind: 'scalar', at, value: null };
      }
      if (++nodes > MAX_NODES) {
        if (!exploded) diags.report('CH0102', `document expands to more than ${MAX_NODES} nodes (aliases?)`, { location: at });
        exploded = true;
        return { kind: 'scalar', at, value: null };
      }
      if (isAlias(n)) {
        // Aliases are resolved by value; yaml's maxAliasCount guards against billion-laughs expansion.
        return convert(n.resolve(doc), depth + 1);
      }
      if (isMap(n)) {
        const entries: PMap['entries'] = [];
        for (const pair of n.items) {
          const k = pair.key as YamlNode | null;
          const keyAt = k ? pos(k.range?.[0] ?? 0) : at;
          const key = k && isScalar(k) ? String(k.value) : '';
          if (!k || !isScalar(k)) diags.report('CH0102', 'mapping keys must be plain scalars', { location: keyAt });
          const value: PNode = pair.value == null ? { kind: 'scalar', at: keyAt, value: null } : convert(pair.value, depth + 1);
          entries.push({ key, keyAt, value });
        }
        return { kind: 'map', at, entries };
      }
      if (isSeq(n)) {
        return { kind: 'seq', at, items: n.items.map((i) => (i == null ? { kind: 'scalar', at, value: null } : convert(i, depth + 1))) };
      }
      if (isScalar(n)) {
        const v = n.value;
        const value = typeof v === 'bigint' ? Number(v) : v instanceof Date ? v.toISOString() : (v as PScalar['value']);
        return { kind: 'scalar', at, value };
      }
      return { kind: 'scalar', at, value: null };
    };
    const root = convert(contents, 0);
    if (!exploded) out.push({ file: file.path, index, at: pos(contents.range?.[0] ?? 0), root });
  });
  return { value: out, diagnostics: diags.items };
}
