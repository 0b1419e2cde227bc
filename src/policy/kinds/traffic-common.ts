/**
 * Stage: decode. Field readers shared by the traffic kinds: Istio's StringMatch (RE2 regexes checked), header
 * operations, and percentages.
 */
import type { PNode } from '../source-map.js';
import { MapReader } from '../reader.js';
import type { HeaderOps, StringMatch } from '../traffic-types.js';
import { isRe2Compatible } from './re2.js';

export function readStringMatch(r: MapReader | undefined): StringMatch | undefined {
  if (!r) return undefined;
  const exact = r.str('exact');
  const prefix = r.str('prefix');
  const regex = r.str('regex');
  r.done();
  const set = [exact, prefix, regex].filter((x) => x !== undefined).length;
  if (set !== 1) {
    r.report('CH0204', undefined, 'a string match needs exactly one of exact, prefix or regex');
    return undefined;
  }
  if (regex !== undefined) {
    const problem = isRe2Compatible(regex);
    if (problem) {
      r.report('CH0204', 'regex', `"${regex}" is not a valid RE2 regular expression: ${problem}`);
      return undefined;
    }
    return { regex };
  }
  return exact !== undefined ? { exact } : { prefix: prefix! };
}

/** `headers: {request: {set, add, remove}, response: {...}}` */
export function readHeaderOps(r: MapReader | undefined): { request: HeaderOps; response: HeaderOps } {
  const empty = (): HeaderOps => ({ set: {}, add: {}, remove: [] });
  const out = { request: empty(), response: empty() };
  if (!r) return out;
  for (const side of ['request', 'response'] as const) {
    const s = r.map(side);
    if (!s) continue;
    out[side] = { set: s.strMap('set') ?? {}, add: s.strMap('add') ?? {}, remove: (s.strList('remove') ?? []).map((x) => x.value) };
    s.done();
  }
  r.done();
  return out;
}

/** Istio's Percent: `{value: 12.5}`. */
export function readPercent(r: MapReader, key: string): number | undefined {
  const p = r.map(key);
  if (!p) return undefined;
  const v = p.num('value', { required: true, min: 0, max: 100 });
  p.done();
  return v;
}

export function mapsOf(node: PNode | undefined, r: MapReader, path: string): MapReader | undefined {
  return MapReader.of(node, r.ctx, path);
}
