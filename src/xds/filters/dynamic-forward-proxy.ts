/**
 * Stage: xds. Envoy's dynamic forward proxy filter, on HTTP listeners whose routes reach a DYNAMIC_DNS service (a
 * wildcard host): it resolves the request's Host before the router picks the cluster's host. Routes to other
 * clusters pass through it untouched (the filter acts only for dynamic forward proxy clusters).
 */
import { isDynamicHost } from '../../ir/clusters.js';
import type { ListenerIR, RouteIR, RouteTableKey } from '../../ir/types.js';
import { dnsCacheConfig } from '../resources/dynamic-forward-proxy.js';
import { anyType } from '../type-urls.js';
import type { HttpFilterPlugin } from './index.js';

export const DFP_FILTER = 'envoy.filters.http.dynamic_forward_proxy';

/** Every route of a connection manager: inline, or its RDS table (a gateway's chain passes its own as `rds`). */
function routesOf(l: ListenerIR, tables: (table: RouteTableKey) => RouteIR[]): RouteIR[] {
  if (l.http?.inline) return l.http.inline.flatMap((v) => v.routes);
  return l.http?.rds ? tables(l.http.rds) : [];
}

const dynamic = (r: RouteIR) =>
  r.action.kind === 'forward' &&
  r.action.clusters.some((c) => c.cluster.direction === 'outbound' && isDynamicHost(c.cluster.host));

export const dynamicForwardProxyFilter: HttpFilterPlugin = {
  name: DFP_FILTER,
  build(l, ctx) {
    if (!routesOf(l, ctx.routesOf).some(dynamic)) return undefined;
    const config = anyType('envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig');
    return { name: DFP_FILTER, typed_config: { '@type': config, dns_cache_config: dnsCacheConfig() } };
  },
};
