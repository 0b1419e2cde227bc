/**
 * Stage: xds. Fault injection (VirtualService `fault`): the HTTP fault filter sits in the chain with no faults of
 * its own; each route that injects a fault carries them in typed_per_filter_config.
 */
import type { ListenerIR, RouteIR, RouteTableKey } from '../../ir/types.js';
import { anyType } from '../type-urls.js';
import type { HttpFilterPlugin } from './index.js';

export const FAULT_FILTER = 'envoy.filters.http.fault';
const HTTP_FAULT = anyType('envoy.extensions.filters.http.fault.v3.HTTPFault');

const fraction = (percent: number) => ({ numerator: Math.round(percent * 10_000), denominator: 'MILLION' });

export function faultPerRoute(f: NonNullable<RouteIR['fault']>): object {
  return {
    '@type': HTTP_FAULT,
    ...(f.delay ? { delay: { fixed_delay: `${f.delay.ms / 1000}s`, percentage: fraction(f.delay.percent) } } : {}),
    ...(f.abort ? { abort: { http_status: f.abort.status, percentage: fraction(f.abort.percent) } } : {}),
  };
}

function routes(l: ListenerIR, tables: (table: RouteTableKey) => RouteIR[]): RouteIR[] {
  return l.http?.inline ? l.http.inline.flatMap((v) => v.routes) : l.http?.rds !== undefined ? tables(l.http.rds) : [];
}

export const faultFilter: HttpFilterPlugin = {
  name: FAULT_FILTER,
  build(l, ctx) {
    if (!routes(l, ctx.routesOf).some((r) => r.fault)) return undefined;
    return { name: FAULT_FILTER, typed_config: { '@type': HTTP_FAULT } };
  },
};
