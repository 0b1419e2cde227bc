/**
 * Stage: decode. Field readers shared by the traffic kinds: Istio's StringMatch (RE2 regexes checked), header
 * operations, and percentages.
 */
import type { PNode } from '../source-map.js';
import { MapReader } from '../reader.js';
import type { Destination, GatewayName, HeaderOps, StringMatch } from '../traffic-types.js';
import { DNS_LABEL } from './common.js';
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
    out[side] = {
      set: s.strMap('set') ?? {},
      add: s.strMap('add') ?? {},
      remove: (s.strList('remove') ?? []).map((x) => x.value),
    };
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

/** A route's `destination` and `weight` (HTTP and TCP routes alike); the weight is absent when not given. */
export function readDestination(
  d: MapReader,
  weightRequired: boolean,
): (Omit<Destination, 'weight'> & { weight?: number }) | undefined {
  const dest = d.map('destination', { required: true });
  const weight = d.int('weight', { min: 0, max: 100, required: weightRequired });
  d.unsupported(['headers'], "per-destination header operations are not supported yet; use the route's headers");
  d.done();
  if (!dest) return undefined;
  const host = dest.str('host', { required: true });
  const subset = dest.str('subset', { pattern: DNS_LABEL, patternHint: 'a DNS label' });
  const portR = dest.map('port');
  const port = portR?.int('number', { required: true, min: 1, max: 65535 });
  portR?.done();
  dest.done();
  if (host === undefined) return undefined;
  const w = weight !== undefined ? { weight } : {};
  return { host, at: dest.at, ...(subset ? { subset } : {}), ...(port ? { port } : {}), ...w };
}

/** `namespace/name` or `name` of a Gateway (DNS labels, as Istio requires of Gateway names). */
const GATEWAY_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?\/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** `mesh`, `namespace/name` or `name`; resolved against the Gateways in the model. */
export function readGateways(r: MapReader): GatewayName[] {
  const list = r.strList('gateways') ?? [];
  return list.filter((g, i) => {
    if (g.value === 'mesh' || GATEWAY_NAME.test(g.value)) return true;
    const path = `${r.sub('gateways')}[${i}]`;
    const message = `${path}: "${g.value}" is not mesh, namespace/name or name`;
    r.ctx.diags.report('CH0204', message, { location: g.at, path, object: r.ctx.object });
    return false;
  });
}

/** The weighted destinations of a tcp or tls route: required, weights adding up to 100 when there are several. */
export function readL4Destinations(r: MapReader): Destination[] {
  const list = r.maps('route', { required: true, nonEmpty: true }) ?? [];
  const route = list
    .map((d) => readDestination(d, list.length > 1))
    .filter((d) => d !== undefined)
    .map((d) => ({ ...d, weight: d.weight ?? 100 }));
  const total = route.reduce((n, d) => n + d.weight, 0);
  if (route.length > 1 && total !== 100) r.report('CH0406', 'route', `weights add up to ${total}, not 100`);
  return route;
}
