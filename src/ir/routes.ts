/**
 * Stage: ir. HTTP routes of a proxy's outbound virtual hosts, from the VirtualService of each host (or a default
 * route to the service), and the inbound routes that carry RateLimitPolicy limits. Envoy-free.
 */
import type { Origin } from '../diag/diagnostic.js';
import { labelsMatch, type MeshModel, type Service, type Workload } from '../model/mesh-model.js';
import { serviceByHost } from '../model/index.js';
import { rateLimitsFor, trafficPolicyFor, virtualServiceFor } from '../model/routing.js';
import type { HttpMatch, HttpRoute, LoadBalancer, StringMatch, VirtualServiceSpec } from '../policy/traffic-types.js';
import { matchApplies, MESH_GATEWAY } from '../model/gateways.js';
import type { Scoped } from '../model/security.js';

type ConsistentHash = NonNullable<LoadBalancer['consistentHash']>;
import { ensureOutboundCluster } from './clusters.js';
import type { ClusterIR, ClusterKey, RouteActionIR, RouteIR, RouteMatchIR, RouteTableKey } from './types.js';

function matchOf(m: HttpMatch | undefined): RouteMatchIR {
  const headers: RouteMatchIR['headers'] = [];
  if (m?.method) headers.push({ name: ':method', match: m.method });
  if (m?.authority) headers.push({ name: ':authority', match: m.authority });
  headers.push(...(m?.headers ?? []));
  return { ...(m?.uri ? { path: m.uri } : {}), headers, query: m?.queryParams ?? [] };
}

/** A route table's identity, for sorting and lookups (xds/names.ts makes the Envoy name). */
export function routeTableId(k: RouteTableKey): string {
  const port = String(k.port).padStart(5, '0');
  return k.kind === 'outbound' ? `outbound|${port}` : `gateway|${port}|${k.address}|${k.server ?? ''}`;
}

/**
 * Where routes are built: at the sidecars (`mesh`) or at a gateway (`namespace/name`); the port a match's `port`
 * means (the service port at a sidecar, the server port at a gateway); and the service whose virtual host it is
 * (a destination without a port on that service keeps the port).
 */
export interface RouteSite {
  ref: string;
  port: number;
  self?: { host: string; port: number };
}

type HashOf = (host: string, port: number, subset?: string) => ConsistentHash | undefined;

/** Routes of `svc:port` as seen from workload `w`. */
export function serviceRoutes(model: MeshModel, w: Workload, svc: Service, port: number, clusters: Map<string, ClusterIR>): RouteIR[] {
  const vs = virtualServiceFor(model, svc.host);
  if (!vs) {
    const cluster = ensureOutboundCluster(clusters, model, svc, port);
    const hash = hashFor(model)(svc.host, port);
    return [{ name: 'default', match: matchOf(undefined), action: { kind: 'forward', clusters: [{ cluster, weight: 100 }], ...(hash ? { hash } : {}) }, origins: [svc.origin] }];
  }
  return virtualServiceRoutes(model, w, vs, { ref: MESH_GATEWAY, port, self: { host: svc.host, port } }, clusters);
}

const hashFor = (model: MeshModel): HashOf => (host, p, subset) =>
  trafficPolicyFor(model, host, p, subset)?.loadBalancer?.consistentHash;

/** The routes of one VirtualService at one site, for workload `w` (a sidecar or a gateway). */
export function virtualServiceRoutes(
  model: MeshModel,
  w: Workload,
  vs: Scoped<VirtualServiceSpec>,
  site: RouteSite,
  clusters: Map<string, ClusterIR>,
): RouteIR[] {
  const hashOf = hashFor(model);
  const out: RouteIR[] = [];
  vs.spec.http.forEach((r, i) => {
    // sourceLabels select the workload (the caller's sidecar, or the gateway); port the site's port; gateways the site.
    const applies = (m: HttpMatch) =>
      (!m.sourceLabels || labelsMatch(m.sourceLabels, w.labels)) &&
      (m.port === undefined || m.port === site.port) &&
      matchApplies(m, vs.namespace, site.ref);
    const matches = r.match.length === 0 ? [undefined] : r.match.filter(applies);
    if (matches.length === 0) return;
    const action = actionOf(model, r, site.self, clusters, hashOf);
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
  self: RouteSite['self'],
  clusters: Map<string, ClusterIR>,
  hashOf: HashOf,
): RouteActionIR {
  if (r.redirect) return { kind: 'redirect', code: r.redirect.code, ...(r.redirect.uri ? { path: r.redirect.uri } : {}), ...(r.redirect.authority ? { authority: r.redirect.authority } : {}) };
  if (r.directResponse) return { kind: 'direct', status: r.directResponse.status, ...(r.directResponse.body !== undefined ? { body: r.directResponse.body } : {}) };
  const target = (host: string, p: number | undefined, subset?: string): { key: ClusterKey; host: string; port: number } | undefined => {
    const s = serviceByHost(model, host);
    if (!s) return undefined;
    const dp = p ?? (s.host === self?.host ? self.port : s.ports[0].number);
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
