/**
 * Stage: xds. RateLimitPolicy -> Envoy's local_ratelimit HTTP filter: in the chain without a bucket of its own
 * (so it limits nothing by default), with a token bucket per route that carries a limit.
 */
import type { ListenerIR, RateLimitIR } from '../../ir/types.js';
import { anyType } from '../type-urls.js';
import type { HttpFilterPlugin } from './index.js';

export const LOCAL_RATELIMIT_FILTER = 'envoy.filters.http.local_ratelimit';
const LOCAL_RATE_LIMIT = anyType('envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit');
const ALWAYS = { default_value: { numerator: 100, denominator: 'HUNDRED' }, runtime_key: 'chancery.local_rate_limit' };

export function rateLimitPerRoute(l: RateLimitIR, routeName: string): object {
  return {
    '@type': LOCAL_RATE_LIMIT,
    stat_prefix: `ratelimit_${routeName.replace(/[^A-Za-z0-9_]/g, '_')}`,
    token_bucket: { max_tokens: l.burst, tokens_per_fill: l.requests, fill_interval: `${l.unitMs / 1000}s` },
    filter_enabled: ALWAYS,
    filter_enforced: ALWAYS,
    status: { code: l.status },
    ...(Object.keys(l.responseHeaders).length > 0
      ? {
          response_headers_to_add: Object.entries(l.responseHeaders).map(([key, value]) => ({
            header: { key, value },
            append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
          })),
        }
      : {}),
  };
}

export const localRateLimitFilter: HttpFilterPlugin = {
  name: LOCAL_RATELIMIT_FILTER,
  build(l: ListenerIR) {
    const limited = (l.http?.inline ?? []).some((v) => v.routes.some((r) => r.rateLimit));
    if (!limited) return undefined;
    return {
      name: LOCAL_RATELIMIT_FILTER,
      typed_config: { '@type': LOCAL_RATE_LIMIT, stat_prefix: 'http_local_rate_limiter' },
    };
  },
};
