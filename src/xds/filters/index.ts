/**
 * Stage: xds. HTTP filters as plug-ins with ONE ordered table. A filter contributes to a listener's
 * http_connection_manager when it has something to say for that listener; the table decides the order, so that
 * the headers authorization inspects are cut to one value first, authentication runs before authorization (CUSTOM,
 * then DENY / AUDIT / ALLOW, as Istio evaluates them), authorization before rate limiting, the dynamic forward proxy
 * (which resolves a wildcard service's Host) just before the router, and the router last.
 */
import type { ListenerIR, RouteIR, RouteTableKey } from '../../ir/types.js';
import { dynamicForwardProxyFilter } from './dynamic-forward-proxy.js';
import { extAuthzFilter } from './ext-authz.js';
import { faultFilter } from './fault.js';
import { localRateLimitFilter } from './local-ratelimit.js';
import { jwtAuthnFilter } from './jwt-authn.js';
import { rbacFilter } from './rbac.js';
import { routerFilter } from './router.js';
import { singleValueHeadersFilter } from './single-value-headers.js';

/** What a filter may look at besides its listener: the routes of the proxy's RDS route tables. */
export interface FilterContext {
  routesOf(table: RouteTableKey): RouteIR[];
}

export interface HttpFilterPlugin {
  /** Envoy's filter name, e.g. envoy.filters.http.router. */
  name: string;
  /** The filter's `http_filters` entries for this listener (one or several), or undefined when it does not apply. */
  build(listener: ListenerIR, ctx: FilterContext): object | object[] | undefined;
}

/** The order of this table is the order of the filters in every http_connection_manager. */
export const HTTP_FILTERS: readonly HttpFilterPlugin[] = [
  singleValueHeadersFilter,
  jwtAuthnFilter,
  extAuthzFilter,
  rbacFilter,
  localRateLimitFilter,
  faultFilter,
  // Resolves the Host of requests to wildcard (DYNAMIC_DNS) services: after every decision, just before routing.
  dynamicForwardProxyFilter,
  routerFilter,
];

export function httpFilters(listener: ListenerIR, ctx: FilterContext): object[] {
  const out: object[] = [];
  for (const f of HTTP_FILTERS) {
    const entry = f.build(listener, ctx);
    if (Array.isArray(entry)) out.push(...entry);
    else if (entry) out.push(entry);
  }
  return out;
}
