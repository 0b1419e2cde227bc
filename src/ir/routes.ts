/**
 * Stage: ir. HTTP routes of a proxy's outbound virtual hosts, from the VirtualService of each host (or a default
 * route to the service), and the inbound routes that carry RateLimitPolicy limits. Envoy-free.
 */
import type { Origin } from '../diag/diagnostic.js';
import { labelsMatch, type MeshModel, type Service, type Workload } from '../model/mesh-model.js';
import { serviceByHost } from '../model/index.js';
import { rateLimitsFor, trafficPolicyFor, virtualServiceFor } from '../model/routing.js';
import type { HttpMatch, HttpRoute, LoadBalancer, StringMatch } from '../policy/traffic-types.js';

type ConsistentHash = NonNullable<LoadBalancer['consistentHash']>;
import { ensureOutboundCluster } from './clusters.js';
import type { ClusterIR, ClusterKey, RouteActionIR, RouteIR, RouteMatchIR } from './types.js';

function matchOf(m: HttpMatch | undefined): RouteMatchIR {
  const headers: RouteMatchIR['headers'] = [];
  if (m?.method) headers.push({ name: ':method', match: m.method });
  if (m?.authority) headers.push({ name: ':authority', match: m.authority });
  headers.push(...(m?.headers ?? []));
  return { ...(m?.uri ? { path: m.uri } : {}), headers, query: m?.queryParams ?? [] };
}

/** Routes of `svc:port` as seen from workload `w`. */
export function serviceRoutes(model: MeshModel, w: Workload, svc: Service, port: number, clusters: Map<string, ClusterIR>): RouteIR[] {
  const vs = virtualServiceFor(model, svc.host);
  const hashOf = (host: string, p: number, subset?: string) => trafficPolicyFor(model, host, p, subset)?.loadBalancer?.consistentHash;
  if (!vs) {
    const cluster = ensureOutboundCluster(clusters, model, svc, port);
    const hash = hashOf(svc.host, port);
    return [{ name: 'default', match: matchOf(undefined), action: { kind: 'forward', clusters: [{ cluster, weight: 100 }], ...(hash ? { hash } : {}) }, origins: [svc.origin] }];
  }
  const out: RouteIR[] = [];
  vs.spec.http.forEach((r, i) => {
    // sourceLabels select the calling workload; port selects the service port.
    const matches = r.match.length === 0 ? [undefined] : r.match.filter((m) => (!m.sourceLabels || labelsMatch(m.sourceLabels, w.labels)) && (m.port === undefined || m.port === port));
    if (matches.length === 0) return;
    const action = actionOf(model, r, svc, port, clusters, hashOf);
    const origins: Origin[] = [r.at];
    for (const m of matches) {
      out.push({
        name: `${vs.namespace}/${vs.name}/http[${i}]${r.name ? ` ${r.name}` : ''}`,
        match: matchOf(m),
        action,
        ...(r.fault ? { fault: r.fault } : {}),
        ...(hasHeaderOps(r) ? { headers: r.headers } : {}),
        origins,
      });
    }
  });
  return out;
}

function hasHeaderOps(r: HttpRoute): boolean {
  const h = r.headers;
  return [h.request, h.response].some((o) => Object.keys(o.set).length > 0 || Object.keys(o.add).length > 0 || o.remove.length > 0);
}

function actionOf(
  model: MeshModel,
  r: HttpRoute,
  svc: Service,
  port: number,
  clusters: Map<string, ClusterIR>,
  hashOf: (host: string, port: number, subset?: string) => ConsistentHash | undefined,
): RouteActionIR {
  if (r.redirect) return { kind: 'redirect', code: r.redirect.code, ...(r.redirect.uri ? { path: r.redirect.uri } : {}), ...(r.redirect.authority ? { authority: r.redirect.authority } : {}) };
  if (r.directResponse) return { kind: 'direct', status: r.directResponse.status, ...(r.directResponse.body !== undefined ? { body: r.directResponse.body } : {}) };
  const target = (host: string, p: number | undefined, subset?: string): { key: ClusterKey; host: string; port: number } | undefined => {
    const s = serviceByHost(model, host);
    if (!s) return undefined;
    const dp = p ?? (s.host === svc.host ? port : s.ports[0].number);
    return { key: ensureOutboundCluster(clusters, model, s, dp, subset), host, port: dp };
  };
  const dests = r.route.map((d) => ({ t: target(d.host, d.port, d.subset), weight: d.weight, subset: d.subset })).filter((x) => x.t && x.weight > 0);
  const first = dests[0]?.t;
  const hash = first ? hashOf(first.host, first.port, dests[0].subset) : undefined;
  const mirror = r.mirror ? target(r.mirror.host, r.mirror.port, r.mirror.subset) : undefined;
  return {
    kind: 'forward',
    clusters: dests.map((d) => ({ cluster: d.t!.key, weight: d.weight })),
    ...(r.timeoutMs !== undefined ? { timeoutMs: r.timeoutMs } : {}),
    ...(r.retries ? { retries: r.retries } : {}),
    ...(mirror ? { mirror: { cluster: mirror.key, percent: r.mirror!.percent } } : {}),
    ...(r.rewrite ? { rewrite: { ...(r.rewrite.uri !== undefined ? { prefix: r.rewrite.uri } : {}), ...(r.rewrite.authority !== undefined ? { authority: r.rewrite.authority } : {}) } } : {}),
    ...(hash ? { hash } : {}),
  };
}

/** Inbound routes: one per rate limit with a match, then the catch-all (with the unmatched limit, if any). */
export function inboundRoutes(model: MeshModel, w: Workload, cluster: ClusterKey, origin: Origin): RouteIR[] {
  const forward: RouteActionIR = { kind: 'forward', clusters: [{ cluster, weight: 100 }] };
  const out: RouteIR[] = [];
  let catchAll: RouteIR = { name: 'inbound', match: matchOf(undefined), action: forward, origins: [origin] };
  for (const p of rateLimitsFor(model, w)) {
    p.spec.limits.forEach((l, i) => {
      const rateLimit = { requests: l.requests, unitMs: l.unitMs, burst: l.burst, status: l.status, responseHeaders: l.responseHeaders };
      const name = `${p.namespace}/${p.name}/limits[${i}]`;
      if (!l.match) {
        catchAll = { ...catchAll, name, rateLimit, origins: [l.at] };
        return;
      }
      const headers: RouteMatchIR['headers'] = l.match.method ? [{ name: ':method', match: { exact: l.match.method } as StringMatch }] : [];
      out.push({ name, match: { ...(l.match.path ? { path: l.match.path } : {}), headers, query: [] }, action: forward, rateLimit, origins: [l.at] });
    });
  }
  return [...out, catchAll];
}
