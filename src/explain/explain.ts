/**
 * Stage: explain (Envoy-free). "Why is this request allowed or denied?" From policy alone: which route the caller's
 * sidecar takes, which destination workload(s) may serve it, whether mTLS carries the caller's identity, whether the
 * JWT (if any) is accepted, and which authorization rule decides — with file:line — or that the mesh default did.
 */
import { formatOrigin, type Origin } from '../diag/diagnostic.js';
import { inboundSecurity } from '../ir/inbound-security.js';
import { serviceRoutes } from '../ir/routes.js';
import type { ClusterIR, RouteIR } from '../ir/types.js';
import { labelsMatch, type MeshModel, type Service, type Workload } from '../model/mesh-model.js';
import { subsetOf } from '../model/routing.js';
import { servicesInScope } from '../model/sidecars.js';
import { evaluate, type AuthzDecision, type RequestFacts } from './authz.js';

export interface ExplainRequest {
  /** `namespace/workload` or `namespace/service-name` (then the service's first workload). */
  from: string;
  /** `host` or `host:port`. */
  to: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  /** Claims of a JWT the caller presents (assumed correctly signed). */
  jwtClaims?: Record<string, unknown>;
}

export interface DestinationVerdict {
  workload: string;
  /** Share of requests reaching this workload through the route's weights, in percent. */
  share: number;
  mtls: 'STRICT' | 'PERMISSIVE' | 'DISABLE';
  /** Whether the caller's identity reaches the callee (mTLS). */
  identityPresented: boolean;
  status: number;
  decision: 'ALLOW' | 'DENY';
  reason: string;
  decidedBy?: { name: string; at: string };
  matched: { name: string; action: string; at: string }[];
}

export interface Explanation {
  from: { workload: string; identity: string };
  to: { host: string; port: number };
  /** Overall: ALLOW when every possible destination allows, DENY when none does, MIXED otherwise. */
  verdict: 'ALLOW' | 'DENY' | 'MIXED';
  status?: number;
  route?: { name: string; at?: string; kind: string };
  note?: string;
  destinations: DestinationVerdict[];
}

const where = (o: Origin | undefined): string => formatOrigin(o);

export class ExplainError extends Error {}

function resolveCaller(model: MeshModel, from: string): Workload {
  const w = model.workloads.find((x) => x.id === from);
  if (w) return w;
  const [ns, name] = from.split('/');
  const svc = model.services.find((s) => s.namespace === ns && s.name === name);
  const ep = svc?.endpoints.find((e) => e.workload);
  const w2 = ep ? model.workloads.find((x) => x.id === ep.workload) : undefined;
  if (!w2) throw new ExplainError(`no workload or service "${from}" (known workloads: ${model.workloads.map((x) => x.id).join(', ')})`);
  return w2;
}

function routeMatches(r: RouteIR, req: { path: string; query: URLSearchParams; headers: Record<string, string> }): boolean {
  const m = r.match;
  if (m.path) {
    if ('exact' in m.path && req.path !== m.path.exact) return false;
    if ('prefix' in m.path && !req.path.startsWith(m.path.prefix)) return false;
    if ('regex' in m.path && !new RegExp(`^(?:${m.path.regex})$`).test(req.path)) return false;
  }
  const sm = (x: { exact: string } | { prefix: string } | { regex: string }, v: string | undefined) =>
    v !== undefined && ('exact' in x ? v === x.exact : 'prefix' in x ? v.startsWith(x.prefix) : new RegExp(`^(?:${x.regex})$`).test(v));
  for (const h of m.headers) if (h.match ? !sm(h.match, req.headers[h.name]) : req.headers[h.name] === undefined) return false;
  for (const q of m.query) if (q.match ? !sm(q.match, req.query.get(q.name) ?? undefined) : !req.query.has(q.name)) return false;
  return true;
}

export function explain(model: MeshModel, q: ExplainRequest): Explanation {
  const caller = resolveCaller(model, q.from);
  const [host, portS] = q.to.split(':');
  const svc: Service | undefined = model.services.find((s) => s.host === host);
  if (!svc) throw new ExplainError(`no ServiceEntry declares host ${host}`);
  const httpPorts = svc.ports.filter((p) => p.protocol !== 'TCP');
  const port = portS ? Number(portS) : (httpPorts.find((p) => p.number === 80) ?? httpPorts[0] ?? svc.ports[0]).number;
  const method = (q.method ?? 'GET').toUpperCase();
  const url = new URL(q.path ?? '/', 'http://x');
  const headers: Record<string, string> = { ...Object.fromEntries(Object.entries(q.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])), ':method': method, ':authority': host };
  const base: Explanation = { from: { workload: caller.id, identity: caller.identity }, to: { host, port }, verdict: 'DENY', destinations: [] };

  if (!servicesInScope(caller, model).some((s) => s.host === host)) {
    return { ...base, status: 404, note: `${host} is not in ${caller.id}'s Sidecar egress scope: its sidecar has no route (404)` };
  }
  const routes = serviceRoutes(model, caller, svc, port, new Map<string, ClusterIR>());
  const route = routes.find((r) => routeMatches(r, { path: url.pathname, query: url.searchParams, headers }));
  if (!route) return { ...base, status: 404, note: 'no route of the VirtualService matches this request (404)' };
  const routeInfo = { name: route.name, at: where(route.origins[0]), kind: route.action.kind };
  if (route.action.kind === 'redirect') return { ...base, verdict: 'ALLOW', status: route.action.code, route: routeInfo, note: 'the caller\'s sidecar answers with a redirect' };
  if (route.action.kind === 'direct') return { ...base, verdict: 'ALLOW', status: route.action.status, route: routeInfo, note: 'the caller\'s sidecar answers directly' };

  // Each weighted destination: the workloads its endpoints run as, and what their sidecars decide.
  const total = route.action.clusters.reduce((n, c) => n + c.weight, 0);
  const destinations: DestinationVerdict[] = [];
  for (const c of route.action.clusters) {
    if (c.cluster.direction !== 'outbound') continue;
    const dsvc = model.services.find((s) => s.host === (c.cluster as { host: string }).host)!;
    const labels = c.cluster.subset ? subsetOf(model, dsvc.host, c.cluster.subset)?.labels ?? {} : {};
    const eps = dsvc.endpoints.filter((e) => labelsMatch(labels, e.labels));
    const share = (100 * c.weight) / total / Math.max(1, eps.length);
    for (const ep of eps) {
      const w = ep.workload ? model.workloads.find((x) => x.id === ep.workload) : undefined;
      if (!w) {
        destinations.push({ workload: `${ep.address} (no sidecar)`, share, mtls: 'DISABLE', identityPresented: false, status: 200, decision: 'ALLOW', reason: 'the endpoint has no sidecar: nothing enforces policy there', matched: [] });
        continue;
      }
      const sec = inboundSecurity(model, w, portOf(dsvc, c.cluster.port, ep));
      const tls = sec.mtls !== 'DISABLE';
      const facts: RequestFacts = {
        ...(tls ? { principal: caller.identity } : {}),
        sourceIp: caller.address,
        host,
        port: portOf(dsvc, c.cluster.port, ep),
        method,
        path: url.pathname,
        headers: Object.fromEntries(Object.entries(headers).filter(([k]) => !k.startsWith(':'))),
      };
      // A JWT from an issuer no RequestAuthentication of the callee accepts is rejected by jwt_authn (401).
      if (q.jwtClaims) {
        const accepted = sec.jwt.some((p) => p.rule.issuer === q.jwtClaims!.iss && (p.rule.audiences.length === 0 || p.rule.audiences.some((a) => [q.jwtClaims!.aud].flat().includes(a))));
        if (!accepted) {
          destinations.push({ workload: w.id, share, mtls: sec.mtls, identityPresented: tls, status: 401, decision: 'DENY', reason: `no RequestAuthentication of ${w.id} accepts a token from issuer "${String(q.jwtClaims.iss)}" (401)`, matched: [] });
          continue;
        }
        facts.jwt = q.jwtClaims;
      }
      const d: AuthzDecision = evaluate(sec, facts);
      destinations.push({
        workload: w.id,
        share,
        mtls: sec.mtls,
        identityPresented: tls,
        status: d.allowed ? 200 : 403,
        decision: d.allowed ? 'ALLOW' : 'DENY',
        reason: d.reason,
        ...(d.decidedBy ? { decidedBy: { name: d.decidedBy.name, at: where(d.decidedBy.at) } } : {}),
        matched: d.matched.map((m) => ({ name: m.name, action: m.action, at: where(m.at) })),
      });
    }
  }
  const allowed = destinations.filter((d) => d.decision === 'ALLOW').length;
  const verdict = allowed === destinations.length ? 'ALLOW' : allowed === 0 ? 'DENY' : 'MIXED';
  const statuses = [...new Set(destinations.map((d) => d.status))];
  return { ...base, verdict, route: routeInfo, destinations, ...(statuses.length === 1 ? { status: statuses[0] } : {}) };
}

function portOf(svc: Service, port: number, ep: { ports: Record<string, number> }): number {
  const sp = svc.ports.find((p) => p.number === port);
  return sp ? ep.ports[sp.name] ?? sp.targetPort ?? sp.number : port;
}

export function formatExplanation(e: Explanation, all: boolean): string {
  const out: string[] = [];
  out.push(`${e.verdict}${e.status !== undefined ? ` (${e.status})` : ''}: ${e.from.workload} -> ${e.to.host}:${e.to.port}`);
  out.push(`  caller identity: ${e.from.identity}`);
  if (e.route) out.push(`  route: ${e.route.name} (${e.route.kind})${e.route.at && e.route.at !== '<mesh>' ? ` at ${e.route.at}` : ''}`);
  if (e.note) out.push(`  ${e.note}`);
  for (const d of e.destinations) {
    out.push(`  ${d.decision} at ${d.workload} (${d.share.toFixed(0)}% of requests, mTLS ${d.mtls}${d.identityPresented ? '' : ', no caller identity'}): ${d.reason}`);
    if (d.decidedBy) out.push(`    decided by ${d.decidedBy.name} at ${d.decidedBy.at}`);
    if (all) for (const m of d.matched) out.push(`    matched ${m.action} ${m.name} at ${m.at}`);
  }
  return out.join('\n');
}
