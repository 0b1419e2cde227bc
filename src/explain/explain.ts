/**
 * Stage: explain (Envoy-free). "Why is this request allowed or denied?" From policy alone, following the request
 * through the same per-proxy IR the xDS translation uses (ir/compile.ts):
 *
 *  1. the caller's sidecar: which egress listener has a virtual host for the authority (its Sidecar egress scope;
 *     none: Envoy answers 404), which route matches (VirtualService order), redirects, direct responses and aborts,
 *     the weighted destinations, and what the route rewrites (path prefix, authority, request headers);
 *  2. each destination workload's sidecar: whether the connection is made at all (the caller originates mTLS when
 *     the cluster says so; a STRICT callee refuses plaintext, a DISABLE one cannot speak TLS, the server's SPIFFE id
 *     must be one the cluster accepts), so whether the caller's identity arrives; JWT verification (401 for a token
 *     no RequestAuthentication of the callee accepts; ignored when none applies);
 *  3. authorization (authz.ts, mirroring xds/filters/ext-authz.ts and rbac.ts), naming the deciding rule with
 *     file:line, or the mesh default. A request that CUSTOM rules select is decided first by an external provider
 *     that policy cannot predict: the answer is DEPENDS (with what follows if it allows), unless the caller says
 *     what to assume (`extAuthz`).
 *
 * test/e2e/explain.test.ts checks the answers against real Envoy sidecars.
 */
import { formatOrigin, type Origin } from '../diag/diagnostic.js';
import { clusterId } from '../ir/clusters.js';
import { compileProxy } from '../ir/compile.js';
import type { ClusterIR, ClusterKey, InboundSecurityIR, ListenerIR, ProxyIR, RouteIR, StringMatchIR } from '../ir/types.js';
import { memoPerModel, serviceByHost, workloadById } from '../model/index.js';
import { endpointPort, labelsMatch, type MeshModel, type Workload } from '../model/mesh-model.js';
import { subsetOf } from '../model/routing.js';
import { isLoopback } from '../model/sidecars.js';
import { isHttpProtocol } from '../policy/types.js';
import { normalizeAuthority, normalizePath } from '../ir/request-normalization.js';
import { re2FullMatch } from '../util/re2.js';
import { evaluate, type AuthzDecision, type DryRunResult, type ExtAuthzAnswer, type RequestFacts } from './authz.js';

export interface ExplainRequest {
  /** `namespace/workload` or `namespace/service-name` (then the service's first workload). */
  from: string;
  /** `host` or `host:port` (also the request's authority, unless a `host` header says otherwise). */
  to: string;
  method?: string;
  /** Path, optionally with a query string. */
  path?: string;
  headers?: Record<string, string>;
  /** Claims of a JWT the caller presents (assumed correctly signed by the issuer's key). */
  jwtClaims?: Record<string, unknown>;
  /** What external authorizers (CUSTOM policies) answer; unknown when absent. */
  extAuthz?: ExtAuthzAnswer;
}

export type Transport = 'mTLS' | 'plaintext' | 'refused';

export interface DestinationVerdict {
  workload: string;
  /** The WorkloadGroup the workload registered itself into, when it is such an instance. */
  registered?: string;
  /** Share of requests reaching this workload through the route's weights, in percent. */
  share: number;
  mtls: 'STRICT' | 'PERMISSIVE' | 'DISABLE';
  /** How the caller's sidecar reaches the callee's: mTLS, plaintext, or not at all. */
  transport: Transport;
  /** Whether the caller's identity reaches the callee (mTLS). */
  identityPresented: boolean;
  /** The request as the callee's sidecar sees it (after the route's rewrites). */
  request: { method: string; authority: string; path: string; sourceIp: string };
  /** Absent when an external authorizer decides and no answer was assumed. */
  status?: number;
  decision: 'ALLOW' | 'DENY' | 'DEPENDS';
  /** Which step decided: the connection (mTLS), JWT authentication (jwt_authn) or authorization (RBAC). */
  stage: 'connection' | 'authentication' | 'authorization';
  reason: string;
  decidedBy?: { name: string; at: string };
  matched: { name: string; action: string; at: string }[];
  /** What dry-run policies would have decided (logged by the callee, enforced nowhere). */
  dryRun?: { deny?: DryRunResult; allow?: DryRunResult };
  /** A CUSTOM rule sends the request to an external authorizer before DENY and ALLOW. */
  extAuthz?: ExtAuthzStep;
}

export interface ExtAuthzStep {
  provider: string;
  /** The CUSTOM rule that selects the request, and where it is written. */
  rule: string;
  at: string;
  assumed?: ExtAuthzAnswer;
  /**
   * Without an assumption: what DENY and ALLOW decide if the provider allows (if it denies: 403, or its status).
   * When they deny, the request is denied either way and its decision is DENY; otherwise it DEPENDS.
   */
  ifAllowed?: { status: number; decision: 'ALLOW' | 'DENY'; reason: string; decidedBy?: { name: string; at: string } };
}

export interface Explanation {
  from: { workload: string; identity: string; registered?: string };
  to: { host: string; port: number };
  /**
   * Overall: ALLOW when every possible destination allows, DENY when none does, DEPENDS when an external authorizer
   * decides at every one, MIXED otherwise.
   */
  verdict: 'ALLOW' | 'DENY' | 'MIXED' | 'DEPENDS';
  /** The HTTP status the caller sees, when every destination gives the same one. */
  status?: number;
  /** Whether the caller's sidecar routes the request at all, and through which egress listener. */
  routed: boolean;
  egress?: string;
  route?: { name: string; at?: string; kind: string };
  note?: string;
  destinations: DestinationVerdict[];
}

/** file:line:column, with the commit for Git sources (a directory's content hash says nothing to a reader). */
const where = (o: Origin | undefined): string => formatOrigin(o?.revision?.startsWith('dir:') ? { ...o, revision: undefined } : o);

export class ExplainError extends Error {}

/** One compiled proxy per workload and model (the explain form of the dashboard asks repeatedly). */
export const proxyOf = memoPerModel((model: MeshModel, id: string): ProxyIR => compileProxy(model, workloadById(model, id)!));

function resolveCaller(model: MeshModel, from: string): Workload {
  const w = workloadById(model, from);
  if (w) return w;
  const [ns, name] = from.split('/');
  const svc = model.services.find((s) => s.namespace === ns && s.name === name);
  const ep = svc?.endpoints.find((e) => e.workload);
  const w2 = ep ? workloadById(model, ep.workload) : undefined;
  if (!w2) throw new ExplainError(`no workload or service "${from}" (known workloads: ${model.workloads.map((x) => x.id).join(', ')})`);
  return w2;
}

/** Envoy's StringMatcher (route matches are case-sensitive; RE2 regexes match the whole value). */
function stringMatch(m: StringMatchIR, v: string | undefined): boolean {
  if (v === undefined) return false;
  if ('exact' in m) return v === m.exact;
  if ('prefix' in m) return v.startsWith(m.prefix);
  return re2FullMatch(m.regex, v);
}

interface HttpRequest {
  /** `:path` with the query string. */
  path: string;
  headers: Record<string, string>;
}

const pathOnly = (p: string) => p.split('?')[0];

/**
 * The client address the callee's connection manager settles on (Envoy's use_remote_address): the connection's
 * peer, unless Mesh numTrustedProxies trusts that many X-Forwarded-For entries from the right. The caller's own
 * sidecar appended its client (the application, on loopback) to the header it forwards.
 */
export function remoteAddress(xff: string | undefined, peer: string, trustedHops: number): string {
  if (trustedHops === 0) return peer;
  const list = [...(xff ?? '').split(','), '127.0.0.1'].map((x) => x.trim()).filter(Boolean);
  return list[list.length - trustedHops] ?? peer;
}

/** Envoy's route match: `prefix` on the whole `:path`, `path` (exact) and regex on the path without the query. */
function routeMatches(r: RouteIR, req: HttpRequest): boolean {
  const m = r.match;
  if (m.path) {
    if ('exact' in m.path && pathOnly(req.path) !== m.path.exact) return false;
    if ('prefix' in m.path && !req.path.startsWith(m.path.prefix)) return false;
    if ('regex' in m.path && !stringMatch(m.path, pathOnly(req.path))) return false;
  }
  for (const h of m.headers) if (h.match ? !stringMatch(h.match, req.headers[h.name.toLowerCase()]) : req.headers[h.name.toLowerCase()] === undefined) return false;
  const query = new URLSearchParams(req.path.includes('?') ? req.path.slice(req.path.indexOf('?') + 1) : '');
  for (const q of m.query) if (q.match ? !stringMatch(q.match, query.get(q.name) ?? undefined) : !query.has(q.name)) return false;
  return true;
}

/** What the route does to the request on its way upstream: prefix and authority rewrites, request header ops. */
function rewritten(r: RouteIR, req: HttpRequest): HttpRequest {
  const headers = { ...req.headers };
  let path = req.path;
  if (r.action.kind === 'forward' && r.action.rewrite) {
    const rw = r.action.rewrite;
    if (rw.prefix !== undefined) {
      const m = r.match.path;
      const matched = !m ? '/' : 'prefix' in m ? m.prefix : pathOnly(req.path);
      path = rw.prefix + path.slice(matched.length);
    }
    if (rw.authority !== undefined) headers[':authority'] = rw.authority;
  }
  if (r.headers) {
    // Envoy's header parser removes first, then adds.
    for (const name of r.headers.request.remove) delete headers[name.toLowerCase()];
    for (const [k, v] of Object.entries(r.headers.request.set)) headers[k.toLowerCase()] = v;
    for (const [k, v] of Object.entries(r.headers.request.add)) headers[k.toLowerCase()] = headers[k.toLowerCase()] !== undefined ? `${headers[k.toLowerCase()]},${v}` : v;
  }
  return { path, headers };
}

type JwtOutcome = { ok: true; claimHeaders: Record<string, string>; forward: boolean } | { ok: false; status: number; reason: string };

/** Envoy's jwt_authn: 401 for a token it cannot verify, 403 for a verified token with a wrong audience. */
function jwtCheck(sec: InboundSecurityIR, claims: Record<string, unknown>, now: number): JwtOutcome {
  const iss = claims.iss;
  const providers = sec.jwt.filter((p) => p.rule.issuer === iss);
  if (providers.length === 0) return { ok: false, status: 401, reason: `no RequestAuthentication of the callee accepts issuer "${String(iss)}": jwt_authn rejects the token (401)` };
  const aud = [claims.aud].flat().filter((x) => typeof x === 'string');
  const p = providers.find((x) => x.rule.audiences.length === 0 || x.rule.audiences.some((a) => aud.includes(a)));
  if (!p) return { ok: false, status: 403, reason: `the token's audience ${JSON.stringify(claims.aud ?? null)} is not one ${providers[0].name} accepts (${providers[0].rule.audiences.join(', ')}): jwt_authn answers 403` };
  if (typeof claims.exp === 'number' && claims.exp * 1000 <= now) return { ok: false, status: 401, reason: 'the token has expired (401)' };
  if (typeof claims.nbf === 'number' && claims.nbf * 1000 > now) return { ok: false, status: 401, reason: 'the token is not valid yet (401)' };
  const claimHeaders: Record<string, string> = {};
  for (const c of p.rule.outputClaimToHeaders) {
    const v = claims[c.claim];
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') claimHeaders[c.header.toLowerCase()] = String(v);
  }
  return { ok: true, claimHeaders, forward: p.rule.forwardOriginalToken };
}

export type Connection =
  | { transport: 'refused'; mtls: DestinationVerdict['mtls']; reason: string }
  | { transport: 'mTLS' | 'plaintext'; mtls: DestinationVerdict['mtls']; inbound: ListenerIR; tls?: { sans: string[] } };

/**
 * Whether the caller's sidecar, sending through `cluster`, reaches workload `w`'s inbound listener on `port`, and
 * how: it originates mTLS when the cluster says so (then the callee sees the caller's identity); a STRICT callee
 * refuses plaintext, a DISABLE one cannot answer TLS, and the server's SPIFFE id must be one the cluster accepts.
 */
export function connection(model: MeshModel, cluster: ClusterIR | undefined, w: Workload, port: number): Connection {
  const inbound = proxyOf(model, w.id).listeners.find((l) => l.direction === 'inbound' && l.port === port && l.security);
  if (!inbound) return { transport: 'refused', mtls: 'DISABLE', reason: `${w.id}'s sidecar has no inbound listener on port ${port}: the connection is refused (503)` };
  const mtls = inbound.security!.mtls;
  const tls = cluster?.tls;
  if (tls && mtls === 'DISABLE') return { transport: 'refused', mtls, reason: `the caller originates mTLS but ${w.id} has mTLS DISABLE on port ${port}: the connection fails (503)` };
  if (!tls && mtls === 'STRICT') return { transport: 'refused', mtls, reason: `the caller sends plaintext (DestinationRule tls DISABLE or no mesh endpoints) but ${w.id} is STRICT on port ${port}: the connection is refused (503)` };
  if (tls && !tls.sans.includes(w.identity)) return { transport: 'refused', mtls, reason: `${w.id} runs as ${w.identity}, which the caller's cluster does not accept (${tls.sans.join(', ')}): 503` };
  return { transport: tls ? 'mTLS' : 'plaintext', mtls, inbound, ...(tls ? { tls } : {}) };
}

/** The caller's cluster for an outbound key, as its sidecar has it. */
export function callerCluster(model: MeshModel, caller: Workload, key: ClusterKey): ClusterIR | undefined {
  return proxyOf(model, caller.id).clusters.find((x) => clusterId(x.key) === clusterId(key));
}

export function explain(model: MeshModel, q: ExplainRequest, now = Date.now()): Explanation {
  return markRegistered(model, explainRequest(model, q, now));
}

/** Names the WorkloadGroup of every registered workload in an explanation (they are explained like the others). */
function markRegistered(model: MeshModel, e: Explanation): Explanation {
  const group = (id: string) => workloadById(model, id)?.registered?.group;
  const from = group(e.from.workload);
  const destinations = e.destinations.map((d) => {
    const g = group(d.workload);
    return g ? { ...d, registered: g } : d;
  });
  return { ...e, from: from ? { ...e.from, registered: from } : e.from, destinations };
}

function explainRequest(model: MeshModel, q: ExplainRequest, now: number): Explanation {
  const caller = resolveCaller(model, q.from);
  const colon = q.to.lastIndexOf(':');
  const host = colon > 0 ? q.to.slice(0, colon) : q.to;
  if (colon > 0 && !/^\d+$/.test(q.to.slice(colon + 1))) throw new ExplainError(`--to "${q.to}": the port must be a number`);
  const svc = serviceByHost(model, host);
  if (!svc) throw new ExplainError(`no ServiceEntry declares host ${host}`);
  const httpPorts = svc.ports.filter((p) => isHttpProtocol(p.protocol));
  const mainPort = (httpPorts.find((p) => p.number === 80) ?? httpPorts[0])?.number;
  const port = colon > 0 ? Number(q.to.slice(colon + 1)) : mainPort ?? svc.ports[0].number;
  const method = (q.method ?? 'GET').toUpperCase();
  // Sidecars drop headers whose names hold an underscore (see xds/resources/listener.ts).
  const given = Object.fromEntries(Object.entries(q.headers ?? {}).filter(([k]) => !k.includes('_')).map(([k, v]) => [k.toLowerCase(), v]));
  const authority = normalizeAuthority(given.host ?? q.to);
  delete given.host;
  const base: Explanation = { from: { workload: caller.id, identity: caller.identity }, to: { host, port }, verdict: 'DENY', routed: false, destinations: [] };
  // The caller's connection manager normalises the path before routing (Mesh pathNormalization).
  const normalized = normalizePath(q.path ?? '/', model.mesh.pathNormalization);
  if (!normalized.ok) return { ...base, status: 400, note: `the caller's sidecar refuses the request: ${normalized.reason}` };
  const req: HttpRequest = { path: normalized.path, headers: { ...given, ':method': method, ':authority': authority } };

  const sp = svc.ports.find((p) => p.number === port);
  if (sp && !isHttpProtocol(sp.protocol)) return explainTcp(model, caller, svc.host, port, base);

  // 1. The caller's sidecar: an egress listener whose route table has a virtual host for this authority.
  const callerIR = proxyOf(model, caller.id);
  const hit = callerIR.routeTables
    .map((t) => ({ t, vh: t.virtualHosts.find((v) => v.domains.some((d) => d.toLowerCase() === authority.toLowerCase())) }))
    .find((x) => x.vh);
  if (!hit) {
    const sp = svc.ports.find((p) => p.number === port);
    const why = sp && !isHttpProtocol(sp.protocol)
      ? `port ${port} of ${host} is ${sp.protocol}: the sidecar's HTTP egress listener has no route for it (404)`
      : `${authority} is not in ${caller.id}'s Sidecar egress scope: its sidecar has no virtual host for it and answers 404`;
    return { ...base, status: 404, note: why };
  }
  const egressListener = callerIR.listeners.find((l) => l.direction === 'outbound' && l.http?.rds === hit.t.port);
  const egress = egressListener ? `${egressListener.address}:${egressListener.port}` : `port ${hit.t.port}`;
  const route = hit.vh!.routes.find((r) => routeMatches(r, req));
  if (!route) return { ...base, routed: false, egress, status: 404, note: 'no route of the VirtualService matches this request: the caller\'s sidecar answers 404' };
  const routeInfo = { name: route.name, at: where(route.origins[0]), kind: route.action.kind };
  const routed = { ...base, routed: true, egress, route: routeInfo };
  if (route.action.kind === 'redirect') return { ...routed, verdict: 'ALLOW', status: route.action.code, note: "the caller's sidecar answers with a redirect" };
  if (route.action.kind === 'direct') return { ...routed, verdict: 'ALLOW', status: route.action.status, note: "the caller's sidecar answers directly" };
  const abort = route.fault?.abort;
  if (abort && abort.percent >= 100) return { ...routed, verdict: 'DENY', status: abort.status, note: `fault injection: the caller's sidecar aborts every request with ${abort.status}` };
  const rewrittenReq = rewritten(route, req);
  // The callee's connection manager normalises again (a rewrite may have produced `//`).
  const atCallee = normalizePath(rewrittenReq.path, model.mesh.pathNormalization);
  if (!atCallee.ok) return { ...routed, verdict: 'DENY', status: 400, note: `the callee's sidecar refuses the request: ${atCallee.reason}` };
  const upstream = { ...rewrittenReq, path: atCallee.path };

  // 2. and 3. Each weighted destination: the workloads behind its cluster, and what their sidecars decide.
  const total = route.action.clusters.reduce((n, c) => n + c.weight, 0);
  const destinations: DestinationVerdict[] = [];
  for (const c of route.action.clusters) {
    if (c.cluster.direction !== 'outbound') continue;
    const cluster = callerCluster(model, caller, c.cluster);
    const dsvc = serviceByHost(model, c.cluster.host)!;
    const sp = dsvc.ports.find((p) => p.number === c.cluster.port);
    const labels = 'subset' in c.cluster && c.cluster.subset ? subsetOf(model, dsvc.host, c.cluster.subset)?.labels ?? {} : {};
    const eps = dsvc.endpoints.filter((e) => labelsMatch(labels, e.labels));
    if (eps.length === 0) {
      destinations.push({ workload: `${clusterId(c.cluster)} (no endpoints)`, share: (100 * c.weight) / total, mtls: 'DISABLE', transport: 'refused', identityPresented: false, request: { method, authority: upstream.headers[':authority'], path: upstream.path, sourceIp: '' }, status: 503, decision: 'DENY', stage: 'connection', reason: 'the destination has no endpoints: no healthy upstream (503)', matched: [] });
      continue;
    }
    const share = (100 * c.weight) / total / eps.length;
    for (const ep of eps) {
      const epPort = sp ? endpointPort(dsvc, sp, ep) : c.cluster.port;
      // Envoy does not bind its upstream connections: towards a loopback address the kernel picks 127.0.0.1.
      const sourceIp = isLoopback(ep.address) ? '127.0.0.1' : caller.address;
      const seen = { method, authority: upstream.headers[':authority'], path: upstream.path, sourceIp };
      const w = workloadById(model, ep.workload);
      if (!w) {
        destinations.push({ workload: `${ep.address}:${epPort} (no sidecar)`, share, mtls: 'DISABLE', transport: cluster?.tls ? 'refused' : 'plaintext', identityPresented: false, request: seen, status: 200, decision: 'ALLOW', stage: 'authorization', reason: 'the endpoint has no sidecar: nothing enforces policy there', matched: [] });
        continue;
      }
      const verdict = (v: Omit<DestinationVerdict, 'workload' | 'share' | 'request'>): void => {
        destinations.push({ workload: w.id, share, request: seen, ...v });
      };
      const conn = connection(model, cluster, w, epPort);
      if (conn.transport === 'refused') {
        verdict({ mtls: conn.mtls, transport: 'refused', identityPresented: false, status: 503, decision: 'DENY', stage: 'connection', reason: conn.reason, matched: [] });
        continue;
      }
      const { inbound, tls } = conn;
      const sec = inbound.security!;
      const transport: Transport = tls ? 'mTLS' : 'plaintext';
      const headers = Object.fromEntries(Object.entries(upstream.headers).filter(([k]) => !k.startsWith(':')));
      const facts: RequestFacts = {
        ...(tls ? { principal: caller.identity } : {}),
        sourceIp,
        remoteIp: remoteAddress(headers['x-forwarded-for'], sourceIp, model.mesh.numTrustedProxies),
        destinationIp: ep.address,
        host: upstream.headers[':authority'],
        port: epPort,
        method,
        path: pathOnly(upstream.path),
        headers,
      };
      const http = inbound.http !== undefined;
      // jwt_authn drops incoming headers named in any provider's claim_to_headers (they cannot be forged), with or
      // without a token; a verified token then sets its own.
      if (http) for (const p of sec.jwt) for (const c of p.rule.outputClaimToHeaders) delete facts.headers[c.header.toLowerCase()];
      let jwtNote = '';
      if (q.jwtClaims && http) {
        if (sec.jwt.length === 0) {
          jwtNote = ' (no RequestAuthentication applies to the callee: the token is not verified and carries no identity)';
        } else {
          const j = jwtCheck(sec, q.jwtClaims, now);
          if (!j.ok) {
            verdict({ mtls: sec.mtls, transport, identityPresented: !!tls, status: j.status, decision: 'DENY', stage: 'authentication', reason: j.reason, matched: [] });
            continue;
          }
          facts.jwt = q.jwtClaims;
          Object.assign(facts.headers, j.claimHeaders);
          if (!j.forward) delete facts.headers.authorization;
        }
      }
      const d: AuthzDecision = evaluate(sec, facts, q.extAuthz);
      verdict({
        mtls: sec.mtls,
        transport,
        identityPresented: !!tls,
        stage: 'authorization',
        ...authorizationOutcome(d, jwtNote),
        matched: d.matched.map((m) => ({ name: m.name, action: m.action, at: where(m.at) })),
        ...(d.dryRun.deny || d.dryRun.allow ? { dryRun: d.dryRun } : {}),
      });
    }
  }
  const count = (x: DestinationVerdict['decision']) => destinations.filter((d) => d.decision === x).length;
  const [n, allowed, depends] = [destinations.length, count('ALLOW'), count('DEPENDS')];
  const verdict =
    n > 0 && allowed === n ? 'ALLOW' : n > 0 && depends === n ? 'DEPENDS' : allowed + depends === 0 ? 'DENY' : 'MIXED';
  const statuses = [...new Set(destinations.map((d) => d.status))];
  const note = abort ? `fault injection: ${abort.percent}% of requests are aborted with ${abort.status} by the caller's sidecar` : undefined;
  const status = statuses.length === 1 && statuses[0] !== undefined ? { status: statuses[0] } : {};
  return { ...routed, verdict, destinations, ...status, ...(note ? { note } : {}) };
}

type Outcome = Pick<DestinationVerdict, 'status' | 'decision' | 'reason' | 'decidedBy' | 'extAuthz'>;

/**
 * The authorization step's answer: 200 / 403, or DEPENDS on an external authorizer nobody told us the answer of
 * (unless DENY / ALLOW deny the request anyway after it: then it is denied whatever the authorizer says).
 */
function authorizationOutcome(d: AuthzDecision, jwtNote: string): Outcome {
  const decidedBy = d.decidedBy ? { decidedBy: { name: d.decidedBy.name, at: where(d.decidedBy.at) } } : {};
  const known = {
    status: d.allowed ? 200 : 403,
    decision: d.allowed ? ('ALLOW' as const) : ('DENY' as const),
    reason: d.reason + jwtNote,
    ...decidedBy,
  };
  const x = d.extAuthz;
  if (!x) return known;
  const step: ExtAuthzStep = { provider: x.provider, rule: x.selectedBy.name, at: where(x.selectedBy.at) };
  if (x.assumed) {
    const why = x.assumed === 'allow' ? ` (${x.provider} allows it, assumed)` : '';
    return { ...known, reason: known.reason + why, extAuthz: { ...step, assumed: x.assumed } };
  }
  const asks = `${x.selectedBy.name} sends the request to the external authorizer ${x.provider} first`;
  const extAuthz = { ...step, ifAllowed: known };
  if (!d.allowed) {
    const reason = `${asks}; whatever it answers, the request is denied: if it allows, ${known.reason}`;
    return { ...known, reason, extAuthz };
  }
  const reason = `${asks}, and policy cannot know its answer (assume one with --ext-authz allow|deny); ` +
    `if it allows: ${known.reason}`;
  return { decision: 'DEPENDS', reason, extAuthz };
}

/**
 * A TCP connection: the caller's TCP egress listener for host:port (none: nothing carries it), then per endpoint
 * the connection (mTLS) and the callee's L4 authorization. There is no HTTP status; a denial closes the connection.
 */
function explainTcp(model: MeshModel, caller: Workload, host: string, port: number, base: Explanation): Explanation {
  const callerIR = proxyOf(model, caller.id);
  const listener = callerIR.listeners.find(
    (l) => l.direction === 'outbound' && l.tcp?.cluster.direction === 'outbound' && l.tcp.cluster.host === host && l.tcp.cluster.port === port,
  );
  if (!listener) {
    return { ...base, note: `${caller.id} has no TCP egress listener for ${host}:${port}: declare one in its Sidecar egress (port with protocol TCP)` };
  }
  const egress = `${listener.address}:${listener.port}`;
  const cluster = callerCluster(model, caller, listener.tcp!.cluster);
  const svc = serviceByHost(model, host)!;
  const sp = svc.ports.find((p) => p.number === port)!;
  const destinations: DestinationVerdict[] = [];
  const eps = svc.endpoints;
  for (const ep of eps) {
    const epPort = endpointPort(svc, sp, ep);
    const sourceIp = isLoopback(ep.address) ? '127.0.0.1' : caller.address;
    const seen = { method: '-', authority: host, path: '-', sourceIp };
    const w = workloadById(model, ep.workload);
    const share = 100 / eps.length;
    if (!w) {
      const reason = 'the endpoint has no sidecar: nothing enforces policy there';
      destinations.push({ workload: `${ep.address}:${epPort} (no sidecar)`, share, mtls: 'DISABLE', transport: 'plaintext', identityPresented: false, request: seen, status: 0, decision: 'ALLOW', stage: 'authorization', reason, matched: [] });
      continue;
    }
    const conn = connection(model, cluster, w, epPort);
    if (conn.transport === 'refused') {
      destinations.push({ workload: w.id, share, mtls: conn.mtls, transport: 'refused', identityPresented: false, request: seen, status: 0, decision: 'DENY', stage: 'connection', reason: conn.reason, matched: [] });
      continue;
    }
    const sec = conn.inbound.security!;
    const facts: RequestFacts = {
      ...(conn.tls ? { principal: caller.identity } : {}),
      sourceIp,
      remoteIp: sourceIp,
      destinationIp: ep.address,
      host: '',
      port: epPort,
      method: '',
      path: '',
      headers: {},
    };
    const d = evaluate(sec, facts);
    destinations.push({
      workload: w.id,
      share,
      mtls: sec.mtls,
      transport: conn.tls ? 'mTLS' : 'plaintext',
      identityPresented: !!conn.tls,
      request: seen,
      status: 0,
      decision: d.allowed ? 'ALLOW' : 'DENY',
      stage: 'authorization',
      reason: `${d.reason}${d.allowed ? '' : ': the callee closes the connection'}`,
      ...(d.decidedBy ? { decidedBy: { name: d.decidedBy.name, at: where(d.decidedBy.at) } } : {}),
      matched: d.matched.map((m) => ({ name: m.name, action: m.action, at: where(m.at) })),
    });
  }
  const allowed = destinations.filter((d) => d.decision === 'ALLOW').length;
  const verdict = allowed === destinations.length && allowed > 0 ? 'ALLOW' : allowed === 0 ? 'DENY' : 'MIXED';
  return { ...base, verdict, routed: true, egress, destinations, note: 'TCP: no HTTP status; a denied connection is closed' };
}

export function formatExplanation(e: Explanation, all: boolean): string {
  const out: string[] = [];
  const reg = (g: string | undefined) => (g ? ` (registered into ${g})` : '');
  const status = e.status !== undefined ? ` (${e.status})` : '';
  out.push(`${e.verdict}${status}: ${e.from.workload}${reg(e.from.registered)} -> ${e.to.host}:${e.to.port}`);
  out.push(`  caller identity: ${e.from.identity}`);
  out.push(`  routed: ${e.routed ? `yes, by the egress listener on ${e.egress}` : e.egress ? `no (egress listener ${e.egress})` : 'no'}`);
  if (e.route) out.push(`  route: ${e.route.name} (${e.route.kind})${e.route.at && e.route.at !== '<mesh>' ? ` at ${e.route.at}` : ''}`);
  if (e.note) out.push(`  ${e.note}`);
  for (const d of e.destinations) {
    const conn = d.transport === 'mTLS' ? 'sent over mTLS' : d.transport === 'plaintext' ? 'sent in plaintext, no caller identity' : 'no connection';
    const how = `${d.share.toFixed(0)}% of requests, mTLS ${d.mtls}, ${conn}`;
    out.push(`  ${d.decision} at ${d.workload}${reg(d.registered)} (${how}): ${d.reason}`);
    out.push(`    the callee sees: ${d.request.method} ${d.request.authority}${d.request.path} from ${d.request.sourceIp}`);
    if (d.extAuthz) {
      const assumed = d.extAuthz.assumed ? `, assumed to ${d.extAuthz.assumed}` : '';
      out.push(`    asks ${d.extAuthz.provider} first (${d.extAuthz.rule} at ${d.extAuthz.at}${assumed})`);
      const ia = d.extAuthz.ifAllowed;
      const denies = 'if it denies: DENY (403, or the status it answers with)';
      if (ia) out.push(`    if ${d.extAuthz.provider} allows: ${ia.decision} (${ia.status}); ${denies}`);
    }
    if (d.decidedBy) out.push(`    decided by ${d.decidedBy.name} at ${d.decidedBy.at}`);
    if (all) for (const m of d.matched) out.push(`    matched ${m.action} ${m.name} at ${m.at}`);
    for (const [action, r] of Object.entries(d.dryRun ?? {})) {
      out.push(`    dry-run ${action.toUpperCase()} policies would say ${r.result}${r.policy ? ` (${r.policy})` : ''}; not enforced`);
    }
  }
  return out.join('\n');
}
