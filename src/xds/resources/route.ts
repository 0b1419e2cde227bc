/**
 * Stage: xds. Virtual hosts, routes and route tables -> envoy.config.route.v3 (RouteConfiguration, VirtualHost,
 * Route). Per-route fault injection and rate limits go in typed_per_filter_config, for the fault and
 * local_ratelimit HTTP filters that the listener's filter table puts in the chain.
 */
import type { RouteIR, RouteMatchIR, RouteTableIR, StringMatchIR, VirtualHostIR } from '../../ir/types.js';
import { clusterName, routeTableName } from '../names.js';
import { FAULT_FILTER, faultPerRoute } from '../filters/fault.js';
import { LOCAL_RATELIMIT_FILTER, rateLimitPerRoute } from '../filters/local-ratelimit.js';
import { durationOf } from './common.js';

/** Istio StringMatch -> envoy.type.matcher.v3.StringMatcher. */
export function stringMatcher(m: StringMatchIR): object {
  if ('exact' in m) return { exact: m.exact };
  if ('prefix' in m) return { prefix: m.prefix };
  return { safe_regex: { regex: m.regex } };
}

function routeMatch(m: RouteMatchIR): object {
  const path = !m.path ? { prefix: '/' } : 'exact' in m.path ? { path: m.path.exact } : 'prefix' in m.path ? { prefix: m.path.prefix } : { safe_regex: { regex: m.path.regex } };
  return {
    ...path,
    ...(m.headers.length > 0 ? { headers: m.headers.map((h) => ({ name: h.name, ...(h.match ? { string_match: stringMatcher(h.match) } : { present_match: true }) })) } : {}),
    ...(m.query.length > 0 ? { query_parameters: m.query.map((q) => ({ name: q.name, ...(q.match ? { string_match: stringMatcher(q.match) } : { present_match: true }) })) } : {}),
  };
}

/** Percent (0-100, fractional) -> FractionalPercent per million. */
export function fractionalPercent(percent: number): object {
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

const REDIRECT_CODES: Record<number, string> = { 301: 'MOVED_PERMANENTLY', 302: 'FOUND', 303: 'SEE_OTHER', 307: 'TEMPORARY_REDIRECT', 308: 'PERMANENT_REDIRECT' };

function headerOps(ops: NonNullable<RouteIR['headers']>['request'], side: 'request' | 'response'): object {
  const add = [
    ...Object.entries(ops.set).map(([key, value]) => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
    ...Object.entries(ops.add).map(([key, value]) => ({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
  ];
  return {
    ...(add.length > 0 ? { [`${side}_headers_to_add`]: add } : {}),
    ...(ops.remove.length > 0 ? { [`${side}_headers_to_remove`]: ops.remove } : {}),
  };
}

export function buildRoute(r: RouteIR): object {
  const out: Record<string, unknown> = { name: r.name, match: routeMatch(r.match) };
  const a = r.action;
  if (a.kind === 'redirect') {
    out.redirect = {
      ...(a.https ? { https_redirect: true } : {}),
      ...(a.port ? { port_redirect: a.port } : {}),
      ...(a.path ? { path_redirect: a.path } : {}),
      ...(a.authority ? { host_redirect: a.authority } : {}),
      response_code: REDIRECT_CODES[a.code] ?? 'MOVED_PERMANENTLY',
    };
  } else if (a.kind === 'direct') {
    out.direct_response = { status: a.status, ...(a.body !== undefined ? { body: { inline_string: a.body } } : {}) };
  } else {
    const action: Record<string, unknown> =
      a.clusters.length === 1
        ? { cluster: clusterName(a.clusters[0].cluster) }
        : { weighted_clusters: { clusters: a.clusters.map((c) => ({ name: clusterName(c.cluster), weight: c.weight })) } };
    if (a.timeoutMs !== undefined) action.timeout = durationOf(a.timeoutMs);
    if (a.retries) {
      action.retry_policy = {
        retry_on: a.retries.retryOn ?? 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
        num_retries: a.retries.attempts,
        ...(a.retries.perTryTimeoutMs !== undefined ? { per_try_timeout: durationOf(a.retries.perTryTimeoutMs) } : {}),
        ...(a.retries.retryOn ? {} : { retriable_status_codes: [503] }),
      };
    }
    if (a.mirror) action.request_mirror_policies = [{ cluster: clusterName(a.mirror.cluster), runtime_fraction: { default_value: fractionalPercent(a.mirror.percent) } }];
    if (a.rewrite?.prefix !== undefined) action.prefix_rewrite = a.rewrite.prefix;
    if (a.rewrite?.authority !== undefined) action.host_rewrite_literal = a.rewrite.authority;
    if (a.hash) {
      const h = a.hash;
      action.hash_policy = [
        h.header ? { header: { header_name: h.header } } : h.cookie ? { cookie: { name: h.cookie.name, ttl: durationOf(h.cookie.ttlMs) } } : { connection_properties: { source_ip: true } },
      ];
    }
    out.route = action;
  }
  if (r.headers) Object.assign(out, headerOps(r.headers.request, 'request'), headerOps(r.headers.response, 'response'));
  const perFilter: Record<string, object> = {};
  if (r.fault) perFilter[FAULT_FILTER] = faultPerRoute(r.fault);
  if (r.rateLimit) perFilter[LOCAL_RATELIMIT_FILTER] = rateLimitPerRoute(r.rateLimit, r.name);
  if (Object.keys(perFilter).length > 0) out.typed_per_filter_config = perFilter;
  return out;
}

export function buildVirtualHost(vh: VirtualHostIR): object {
  return { name: vh.name, domains: vh.domains, routes: vh.routes.map(buildRoute) };
}

export function buildRouteConfiguration(t: RouteTableIR): object {
  const config = { name: routeTableName(t.key), virtual_hosts: t.virtualHosts.map(buildVirtualHost) };
  // A gateway's domains are host names (Istio's gateway route tables): `Host: shop.example.com:8443` is that host.
  return t.key.kind === 'gateway' ? { ...config, ignore_port_in_host_matching: true } : config;
}
