/**
 * Stage: decode. `chancery.dev/v1alpha1` RateLimitPolicy: local (per sidecar instance) token-bucket limits on a
 * workload's inbound traffic, optionally per path/method, with the status code and headers to answer with.
 *
 *   spec:
 *     selector: { matchLabels: { app: backend } }
 *     limits:
 *       - match: { path: { prefix: /api/ }, method: POST }   # optional: all requests when absent
 *         requests: 100                                       # tokens per unit
 *         unit: second                                        # second | minute | hour
 *         burst: 200                                          # bucket size (default: requests)
 *         status: 429                                         # default 429
 *         responseHeaders: { x-ratelimit: exceeded }
 */
import type { MapReader } from '../reader.js';
import type { RateLimit, RateLimitPolicySpec } from '../traffic-types.js';
import { readLabelSelector } from './common.js';
import { readStringMatch } from './traffic-common.js';

const UNITS: Record<string, number> = { second: 1000, minute: 60_000, hour: 3_600_000 };

export function decodeRateLimitPolicy(spec: MapReader | undefined): RateLimitPolicySpec | undefined {
  if (!spec) return undefined;
  const selector = readLabelSelector(spec, 'selector', 'matchLabels');
  const limits: RateLimit[] = [];
  for (const l of spec.maps('limits', { required: true, nonEmpty: true }) ?? []) {
    const m = l.map('match');
    let match: RateLimit['match'];
    if (m) {
      const path = readStringMatch(m.map('path'));
      const method = m.str('method', { pattern: /^[A-Z]+$/, patternHint: 'an HTTP method such as GET' });
      m.done();
      match = { ...(path ? { path } : {}), ...(method ? { method } : {}) };
    }
    const requests = l.int('requests', { required: true, min: 1 });
    const unit = l.str('unit', { oneOf: Object.keys(UNITS) }) ?? 'second';
    const burst = l.int('burst', { min: 1 });
    const status = l.int('status', { min: 400, max: 599 }) ?? 429;
    const responseHeaders = l.strMap('responseHeaders') ?? {};
    l.done();
    if (requests === undefined) continue;
    limits.push({ requests, unitMs: UNITS[unit], burst: burst ?? requests, status, responseHeaders, at: l.at, ...(match ? { match } : {}) });
  }
  spec.done();
  return { limits, ...(selector ? { selector } : {}) };
}
