/**
 * Stage: decode. A strict reader over a located YAML mapping. Each read marks its key as used; `done()` reports
 * every key nobody read as an unknown field, so a typo is never silently ignored. Wrong types, missing required
 * fields and invalid values become diagnostics with the field path and the exact position.
 */
import type { Diagnostics, Origin } from '../diag/diagnostic.js';
import type { DiagnosticCode } from '../diag/codes.js';
import type { PMap, PNode } from './source-map.js';

export interface ReadContext {
  diags: Diagnostics;
  /** `Kind namespace/name`, attached to every diagnostic. */
  object: string;
}

function describe(n: PNode): string {
  if (n.kind === 'map') return 'a mapping';
  if (n.kind === 'seq') return 'a list';
  return n.value === null ? 'null' : `a ${typeof n.value}`;
}

export class MapReader {
  private readonly used = new Set<string>();
  private readonly byKey = new Map<string, PMap['entries'][number]>();

  constructor(
    readonly node: PMap,
    readonly ctx: ReadContext,
    readonly path: string,
  ) {
    for (const e of node.entries) this.byKey.set(e.key, e);
  }

  /** Wraps a node that must be a mapping; reports and returns undefined otherwise. */
  static of(node: PNode | undefined, ctx: ReadContext, path: string): MapReader | undefined {
    if (!node) return undefined;
    if (node.kind !== 'map') {
      ctx.diags.report('CH0202', `${path}: expected a mapping, found ${describe(node)}`, { location: node.at, path, object: ctx.object });
      return undefined;
    }
    return new MapReader(node, ctx, path);
  }

  get at(): Origin {
    return this.node.at;
  }

  sub(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  keys(): string[] {
    return this.node.entries.map((e) => e.key);
  }

  /** Position of a key's value (or of the mapping when absent). */
  loc(key?: string): Origin {
    if (key === undefined) return this.node.at;
    return this.byKey.get(key)?.value.at ?? this.node.at;
  }

  keyLoc(key: string): Origin {
    return this.byKey.get(key)?.keyAt ?? this.node.at;
  }

  report(code: DiagnosticCode, key: string | undefined, message: string): void {
    const path = key === undefined ? this.path : this.sub(key);
    this.ctx.diags.report(code, `${path}: ${message}`, { location: this.loc(key), path, object: this.ctx.object });
  }

  raw(key: string): PNode | undefined {
    const e = this.byKey.get(key);
    if (!e) return undefined;
    this.used.add(key);
    if (e.value.kind === 'scalar' && e.value.value === null) return undefined;
    return e.value;
  }

  private need(key: string, required: boolean | undefined): void {
    if (required && !this.byKey.has(key)) {
      this.ctx.diags.report('CH0203', `${this.sub(key)}: required field is missing`, {
        location: this.node.at,
        path: this.sub(key),
        object: this.ctx.object,
      });
    }
  }

  str(key: string, opts: { required?: boolean; pattern?: RegExp; patternHint?: string; oneOf?: readonly string[] } = {}): string | undefined {
    this.need(key, opts.required);
    const n = this.raw(key);
    if (!n) return undefined;
    if (n.kind !== 'scalar' || typeof n.value !== 'string') {
      this.report('CH0202', key, `expected a string, found ${describe(n)}`);
      return undefined;
    }
    if (opts.oneOf && !opts.oneOf.includes(n.value)) {
      this.report('CH0204', key, `"${n.value}" is not one of ${opts.oneOf.join(', ')}`);
      return undefined;
    }
    if (opts.pattern && !opts.pattern.test(n.value)) {
      this.report('CH0204', key, `"${n.value}" is not ${opts.patternHint ?? `matching ${opts.pattern}`}`);
      return undefined;
    }
    return n.value;
  }

  int(key: string, opts: { required?: boolean; min?: number; max?: number } = {}): number | undefined {
    this.need(key, opts.required);
    const n = this.raw(key);
    if (!n) return undefined;
    if (n.kind !== 'scalar' || typeof n.value !== 'number' || !Number.isInteger(n.value)) {
      this.report('CH0202', key, `expected an integer, found ${describe(n)}`);
      return undefined;
    }
    if ((opts.min !== undefined && n.value < opts.min) || (opts.max !== undefined && n.value > opts.max)) {
      this.report('CH0204', key, `${n.value} is out of range [${opts.min ?? '-inf'}, ${opts.max ?? 'inf'}]`);
      return undefined;
    }
    return n.value;
  }

  num(key: string, opts: { required?: boolean; min?: number; max?: number } = {}): number | undefined {
    this.need(key, opts.required);
    const n = this.raw(key);
    if (!n) return undefined;
    if (n.kind !== 'scalar' || typeof n.value !== 'number') {
      this.report('CH0202', key, `expected a number, found ${describe(n)}`);
      return undefined;
    }
    if ((opts.min !== undefined && n.value < opts.min) || (opts.max !== undefined && n.value > opts.max)) {
      this.report('CH0204', key, `${n.value} is out of range [${opts.min ?? '-inf'}, ${opts.max ?? 'inf'}]`);
      return undefined;
    }
    return n.value;
  }

  bool(key: string): boolean | undefined {
    const n = this.raw(key);
    if (!n) return undefined;
    if (n.kind !== 'scalar' || typeof n.value !== 'boolean') {
      this.report('CH0202', key, `expected true or false, found ${describe(n)}`);
      return undefined;
    }
    return n.value;
  }

  /** A duration written as in Istio: `1h`, `10m`, `30s`, `250ms`, or a combination like `1m30s`. Milliseconds. */
  duration(key: string, opts: { required?: boolean; minMs?: number; maxMs?: number } = {}): number | undefined {
    const s = this.str(key, { required: opts.required });
    if (s === undefined) return undefined;
    const ms = parseDurationMs(s);
    if (ms === undefined) {
      this.report('CH0204', key, `"${s}" is not a duration (examples: 250ms, 10s, 5m, 24h)`);
      return undefined;
    }
    if ((opts.minMs !== undefined && ms < opts.minMs) || (opts.maxMs !== undefined && ms > opts.maxMs)) {
      this.report('CH0204', key, `"${s}" is out of range`);
      return undefined;
    }
    return ms;
  }

  map(key: string, opts: { required?: boolean } = {}): MapReader | undefined {
    this.need(key, opts.required);
    return MapReader.of(this.raw(key), this.ctx, this.sub(key));
  }

  /** A list; each item is passed to `each` with its own path. */
  list<T>(key: string, each: (item: PNode, path: string) => T | undefined, opts: { required?: boolean; nonEmpty?: boolean } = {}): T[] | undefined {
    this.need(key, opts.required);
    const n = this.raw(key);
    if (!n) return undefined;
    if (n.kind !== 'seq') {
      this.report('CH0202', key, `expected a list, found ${describe(n)}`);
      return undefined;
    }
    if (opts.nonEmpty && n.items.length === 0) {
      this.report('CH0204', key, 'must not be empty');
    }
    const out: T[] = [];
    n.items.forEach((item, i) => {
      const v = each(item, `${this.sub(key)}[${i}]`);
      if (v !== undefined) out.push(v);
    });
    return out;
  }

  /** A list of mappings. */
  maps(key: string, opts: { required?: boolean; nonEmpty?: boolean } = {}): MapReader[] | undefined {
    return this.list(key, (item, path) => MapReader.of(item, this.ctx, path), opts);
  }

  strList(key: string, opts: { required?: boolean; nonEmpty?: boolean } = {}): { value: string; at: Origin }[] | undefined {
    return this.list(
      key,
      (item, path) => {
        if (item.kind !== 'scalar' || typeof item.value !== 'string') {
          this.ctx.diags.report('CH0202', `${path}: expected a string, found ${describe(item)}`, { location: item.at, path, object: this.ctx.object });
          return undefined;
        }
        return { value: item.value, at: item.at };
      },
      opts,
    );
  }

  /** A mapping of string keys to string values (labels). */
  strMap(key: string): Record<string, string> | undefined {
    const m = this.map(key);
    if (!m) return undefined;
    const out: Record<string, string> = {};
    for (const e of m.node.entries) {
      m.used.add(e.key);
      if (e.value.kind !== 'scalar' || e.value.value === null || typeof e.value.value === 'object') {
        m.report('CH0202', e.key, `expected a string, found ${describe(e.value)}`);
        continue;
      }
      out[e.key] = String(e.value.value);
    }
    return out;
  }

  /** A mapping of string keys to integers (WorkloadEntry ports). */
  intMap(key: string, opts: { min?: number; max?: number } = {}): Record<string, number> | undefined {
    const m = this.map(key);
    if (!m) return undefined;
    const out: Record<string, number> = {};
    for (const k of m.keys()) {
      const v = m.int(k, opts);
      if (v !== undefined) out[k] = v;
    }
    return out;
  }

  /** Fields that Istio defines but Chancery does not implement yet: rejected, never ignored. */
  unsupported(keys: readonly string[], why = 'is not supported by Chancery yet'): void {
    for (const k of keys) {
      if (!this.byKey.has(k)) continue;
      this.used.add(k);
      this.ctx.diags.report('CH0205', `${this.sub(k)} ${why}`, { location: this.keyLoc(k), path: this.sub(k), object: this.ctx.object });
    }
  }

  /** Reports every key that was never read as an unknown field. Call after reading. */
  done(): void {
    for (const e of this.node.entries) {
      if (this.used.has(e.key)) continue;
      this.ctx.diags.report('CH0201', `${this.sub(e.key)}: unknown field`, { location: e.keyAt, path: this.sub(e.key), object: this.ctx.object });
    }
  }
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;

/** Parses `1h30m`, `250ms`, `1.5s` into milliseconds; undefined if malformed. */
export function parseDurationMs(s: string): number | undefined {
  if (s.length === 0) return undefined;
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  DURATION_PART.lastIndex = 0;
  let pos = 0;
  while (pos < s.length) {
    DURATION_PART.lastIndex = pos;
    const m = DURATION_PART.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * unit[m[2]];
    pos = DURATION_PART.lastIndex;
  }
  return Math.round(total);
}
