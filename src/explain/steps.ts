/**
 * Stage: explain (Envoy-free). The steps a request goes through that every explanation shares, over the same
 * per-proxy IR the xDS translation uses: Envoy's route matching and rewrites, and from a matched route on, each
 * weighted destination: whether the connection is made (mTLS), JWT verification and authorization at the callee's
 * sidecar (or, at a gateway's server, through-gateway.ts). explain.ts starts requests at a sidecar,
 * explain-gateway.ts at a gateway.
 */
import { isGatewayWorkload } from '../model/gateways.js';
import { throughGateway } from './through-gateway.js';
import { destinationEndpoints, originationSummary } from './upstream-tls.js';
import { formatOrigin, type Origin } from '../diag/diagnostic.js';
import { clusterId } from '../ir/clusters.js';
import { compileProxy } from '../ir/compile.js';
import type {
  ClusterIR,
  ClusterKey,
  InboundSecurityIR,
  ListenerIR,
  ProxyIR,
  RouteIR,
  StringMatchIR,
} from '../ir/types.js';
import { memoPerModel, serviceByHost, workloadById } from '../model/index.js';
import { endpointPort, labelsMatch, type MeshModel, type Workload } from '../model/mesh-model.js';
import { subsetOf } from '../model/routing.js';
import { isLoopback } from '../model/sidecars.js';
import { normalizePath } from '../ir/request-normalization.js';
import {
  evaluate,
  stringMatcherMatches,
  type AuthzDecision,
  type DryRunResult,
  type ExtAuthzAnswer,
  type RequestFacts,
} from './authz.js';

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
  /** From a gateway: the outside client's address (default 192.0.2.1). */
  sourceIp?: string;
  /** From a gateway: the TLS server name the client sends (default: the host of `to`), which picks the chain. */
  sni?: string;
}

/** `TLS`: TLS the caller's sidecar originates with certificates of the user's (DestinationRule SIMPLE / MUTUAL). */
export type Transport = 'mTLS' | 'TLS' | 'plaintext' | 'refused';

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
  /** transport `TLS`: what the caller's sidecar originates (see upstream-tls.ts). */
  tls?: string;
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
  /** A gateway's server the connection arrives at (an egress gateway), and how it meets the caller's TLS. */
  server?: { name: string; tls: GatewayHop['tls'] };
  /** At a gateway that lets the request through: where it sends it on (its route and destinations). */
  beyond?: Explanation;
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
  /** A request from outside: what the gateway it arrives at decides first. */
  gateway?: GatewayHop;
  destinations: DestinationVerdict[];
}

/** The gateway an outside request arrives at: which listener and server take it, and its own JWT and RBAC. */
export interface GatewayHop extends Decision {
  workload: string;
  /** address:port of the listener. */
  listener: string;
  /** `namespace/gateway/servers[i]` whose filter chain takes the request. */
  server: string;
  tls: 'plaintext' | 'SIMPLE' | 'MUTUAL' | 'OPTIONAL_MUTUAL' | 'ISTIO_MUTUAL' | 'PASSTHROUGH';
  /** The request as the gateway's filters see it (normalised; remote.ip from X-Forwarded-For and trusted hops). */
  request: { method: string; authority: string; path: string; sourceIp: string; remoteIp: string };
  /** An L4 server: a connection (no request), forwarded by a tcp or tls route; its SNI when it is TLS. */
  l4?: { sni?: string };
}

/** file:line:column, with the commit for Git sources (a directory's content hash says nothing to a reader). */
export const where = (o: Origin | undefined): string =>
  formatOrigin(o?.revision?.startsWith('dir:') ? { ...o, revision: undefined } : o);

export class ExplainError extends Error {}

/** One compiled proxy per workload and model (the explain form of the dashboard asks repeatedly). */
export const proxyOf = memoPerModel((model: MeshModel, id: string): ProxyIR =>
  compileProxy(model, workloadById(model, id)!),
);

/** Envoy's StringMatcher for route matches (case-sensitive), evaluated as authorization's matchers are. */
const stringMatch = (m: StringMatchIR, v: string | undefined): boolean => stringMatcherMatches(m, v);

export interface HttpRequest {
  /** `:path` with the query string. */
  path: string;
  headers: Record<string, string>;
}

export const pathOnly = (p: string) => p.split('?')[0];

/**
 * The client address the callee's connection manager settles on (Envoy's use_remote_address): the connection's
 * peer, unless Mesh numTrustedProxies trusts that many X-Forwarded-For entries from the right. The caller's own
 * proxy appended its client (`appended`: a sidecar's application on loopback; a gateway's client; '' for none).
 */
export function remoteAddress(
  xff: string | undefined,
  peer: string,
  trustedHops: number,
  appended = '127.0.0.1',
): string {
  if (trustedHops === 0) return peer;
  const list = [...(xff ?? '').split(','), appended].map((x) => x.trim()).filter(Boolean);
  return list[list.length - trustedHops] ?? peer;
}

/** Envoy's route match: `prefix` on the whole `:path`, `path` (exact) and regex on the path without the query. */
export function routeMatches(r: RouteIR, req: HttpRequest): boolean {
  const m = r.match;
  if (m.path) {
    if ('exact' in m.path && pathOnly(req.path) !== m.path.exact) return false;
    if ('prefix' in m.path && !req.path.startsWith(m.path.prefix)) return false;
    if ('regex' in m.path && !stringMatch(m.path, pathOnly(req.path))) return false;
  }
  for (const h of m.headers)
    if (
      h.match
        ? !stringMatch(h.match, req.headers[h.name.toLowerCase()])
        : req.headers[h.name.toLowerCase()] === undefined
    )
      return false;
  const query = new URLSearchParams(req.path.includes('?') ? req.path.slice(req.path.indexOf('?') + 1) : '');
  for (const q of m.query)
    if (q.match ? !stringMatch(q.match, query.get(q.name) ?? undefined) : !query.has(q.name)) return false;
  return true;
}

/** What the route does to the request on its way upstream: prefix and authority rewrites, request header ops. */
export function rewritten(r: RouteIR, req: HttpRequest): HttpRequest {
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
    for (const [k, v] of Object.entries(r.headers.request.add))
      headers[k.toLowerCase()] = headers[k.toLowerCase()] !== undefined ? `${headers[k.toLowerCase()]},${v}` : v;
  }
  return { path, headers };
}

export type JwtOutcome =
  { ok: true; claimHeaders: Record<string, string>; forward: boolean } | { ok: false; status: number; reason: string };

/** Envoy's jwt_authn: 401 for a token it cannot verify, 403 for a verified token with a wrong audience. */
export function jwtCheck(sec: InboundSecurityIR, claims: Record<string, unknown>, now: number): JwtOutcome {
  const iss = claims.iss;
  const providers = sec.jwt.filter((p) => p.rule.issuer === iss);
  if (providers.length === 0)
    return {
      ok: false,
      status: 401,
      reason:
        `no RequestAuthentication of the callee accepts issuer "${String(iss)}": ` +
        'jwt_authn rejects the token (401)',
    };
  const aud = [claims.aud].flat().filter((x) => typeof x === 'string');
  const p = providers.find((x) => x.rule.audiences.length === 0 || x.rule.audiences.some((a) => aud.includes(a)));
  if (!p)
    return {
      ok: false,
      status: 403,
      reason:
        `the token's audience ${JSON.stringify(claims.aud ?? null)} is not one ${providers[0].name} accepts ` +
        `(${providers[0].rule.audiences.join(', ')}): jwt_authn answers 403`,
    };
  if (typeof claims.exp === 'number' && claims.exp * 1000 <= now)
    return { ok: false, status: 401, reason: 'the token has expired (401)' };
  if (typeof claims.nbf === 'number' && claims.nbf * 1000 > now)
    return { ok: false, status: 401, reason: 'the token is not valid yet (401)' };
  const claimHeaders: Record<string, string> = {};
  for (const c of p.rule.outputClaimToHeaders) {
    const v = claims[c.claim];
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
      claimHeaders[c.header.toLowerCase()] = String(v);
  }
  return { ok: true, claimHeaders, forward: p.rule.forwardOriginalToken };
}

export type Connection =
  | { transport: 'refused'; mtls: DestinationVerdict['mtls']; reason: string }
  | {
      transport: 'mTLS' | 'plaintext';
      mtls: DestinationVerdict['mtls'];
      inbound: ListenerIR;
      tls?: { sans: string[] };
    };

/**
 * Whether the caller's sidecar, sending through `cluster`, reaches workload `w`'s inbound listener on `port`, and
 * how: it originates mTLS when the cluster says so (then the callee sees the caller's identity); a STRICT callee
 * refuses plaintext, a DISABLE one cannot answer TLS, and the server's SPIFFE id must be one the cluster accepts.
 */
export function connection(model: MeshModel, cluster: ClusterIR | undefined, w: Workload, port: number): Connection {
  const inbound = proxyOf(model, w.id).listeners.find(
    (l) => l.direction === 'inbound' && l.port === port && l.security,
  );
  if (!inbound)
    return {
      transport: 'refused',
      mtls: 'DISABLE',
      reason: `${w.id}'s sidecar has no inbound listener on port ${port}: the connection is refused (503)`,
    };
  const mtls = inbound.security!.mtls;
  const tls = cluster?.tls;
  if (tls && mtls === 'DISABLE')
    return {
      transport: 'refused',
      mtls,
      reason: `the caller originates mTLS but ${w.id} has mTLS DISABLE on port ${port}: the connection fails (503)`,
    };
  if (!tls && mtls === 'STRICT')
    return {
      transport: 'refused',
      mtls,
      reason:
        'the caller sends plaintext (DestinationRule tls DISABLE or no mesh endpoints) ' +
        `but ${w.id} is STRICT on port ${port}: the connection is refused (503)`,
    };
  if (tls && !tls.sans.includes(w.identity))
    return {
      transport: 'refused',
      mtls,
      reason: `${w.id} runs as ${w.identity}, which the caller's cluster does not accept (${tls.sans.join(', ')}): 503`,
    };
  return { transport: tls ? 'mTLS' : 'plaintext', mtls, inbound, ...(tls ? { tls } : {}) };
}

/** The caller's cluster for an outbound key, as its sidecar has it. */
export function callerCluster(model: MeshModel, caller: Workload, key: ClusterKey): ClusterIR | undefined {
  return proxyOf(model, caller.id).clusters.find((x) => clusterId(x.key) === clusterId(key));
}

/** What a proxy's HTTP filters decide: JWT (jwt_authn), then authorization (RBAC). */
export type Decision = Pick<
  DestinationVerdict,
  'status' | 'decision' | 'stage' | 'reason' | 'decidedBy' | 'matched' | 'dryRun' | 'extAuthz'
>;

/**
 * jwt_authn then RBAC at a sidecar's inbound listener or a gateway's: `facts.headers` becomes what the request
 * carries on (claim headers set, the token kept or dropped). `who` names the proxy in notes.
 */
export function decideAt(
  sec: InboundSecurityIR,
  facts: RequestFacts,
  http: boolean,
  o: { jwtClaims?: Record<string, unknown>; extAuthz?: ExtAuthzAnswer; now: number; who: string },
): Decision {
  const { jwtClaims, now, who } = o;
  // jwt_authn drops incoming headers named in any provider's claim_to_headers (they cannot be forged), with or
  // without a token; a verified token then sets its own.
  if (http)
    for (const p of sec.jwt) for (const c of p.rule.outputClaimToHeaders) delete facts.headers[c.header.toLowerCase()];
  let jwtNote = '';
  if (jwtClaims && http) {
    if (sec.jwt.length === 0) {
      jwtNote = ` (no RequestAuthentication applies to ${who}: the token is not verified and carries no identity)`;
    } else {
      const j = jwtCheck(sec, jwtClaims, now);
      if (!j.ok) return { status: j.status, decision: 'DENY', stage: 'authentication', reason: j.reason, matched: [] };
      facts.jwt = jwtClaims;
      Object.assign(facts.headers, j.claimHeaders);
      if (!j.forward) delete facts.headers.authorization;
    }
  }
  const d: AuthzDecision = evaluate(sec, facts, o.extAuthz);
  return {
    stage: 'authorization',
    ...authorizationOutcome(d, jwtNote),
    matched: d.matched.map((m) => ({ name: m.name, action: m.action, at: where(m.at) })),
    ...(d.dryRun.deny || d.dryRun.allow ? { dryRun: d.dryRun } : {}),
  };
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
  const reason =
    `${asks}, and policy cannot know its answer (assume one with --ext-authz allow|deny); ` +
    `if it allows: ${known.reason}`;
  return { decision: 'DEPENDS', reason, extAuthz };
}

export interface FollowOptions {
  /** The explanation so far (caller, route), completed with the destinations. */
  routed: Explanation;
  method: string;
  now: number;
  /** What the caller's proxy appends to X-Forwarded-For. */
  appended: string;
  /** Who answers for the caller's side in notes: "the caller's sidecar", "the gateway". */
  proxy: string;
  jwtClaims?: Record<string, unknown>;
  extAuthz?: ExtAuthzAnswer;
}

/**
 * From the caller's proxy onwards, once a route matched: aborts, the route's rewrites, then each weighted
 * destination's workloads and what their sidecars decide. `appended` is the address the caller's proxy adds to
 * X-Forwarded-For (a sidecar: its application on loopback; a gateway: its client).
 */
export function followRoute(
  model: MeshModel,
  caller: Workload,
  route: RouteIR,
  req: HttpRequest,
  o: FollowOptions,
): Explanation {
  const { routed, method, now } = o;
  if (route.action.kind === 'redirect')
    return { ...routed, verdict: 'ALLOW', status: route.action.code, note: `${o.proxy} answers with a redirect` };
  if (route.action.kind === 'direct')
    return { ...routed, verdict: 'ALLOW', status: route.action.status, note: `${o.proxy} answers directly` };
  const abort = route.fault?.abort;
  if (abort && abort.percent >= 100)
    return {
      ...routed,
      verdict: 'DENY',
      status: abort.status,
      note: `fault injection: ${o.proxy} aborts every request with ${abort.status}`,
    };
  const rewrittenReq = rewritten(route, req);
  // The callee's connection manager normalises again (a rewrite may have produced `//`).
  const atCallee = normalizePath(rewrittenReq.path, model.mesh.pathNormalization);
  if (!atCallee.ok)
    return {
      ...routed,
      verdict: 'DENY',
      status: 400,
      note: `the callee's sidecar refuses the request: ${atCallee.reason}`,
    };
  const upstream = { ...rewrittenReq, path: atCallee.path };

  // 2. and 3. Each weighted destination: the workloads behind its cluster, and what their sidecars decide.
  const total = route.action.clusters.reduce((n, c) => n + c.weight, 0);
  const destinations: DestinationVerdict[] = [];
  for (const c of route.action.clusters) {
    if (c.cluster.direction !== 'outbound') continue;
    const cluster = callerCluster(model, caller, c.cluster);
    const dsvc = serviceByHost(model, c.cluster.host)!;
    const sp = dsvc.ports.find((p) => p.number === c.cluster.port);
    const labels =
      'subset' in c.cluster && c.cluster.subset ? (subsetOf(model, dsvc.host, c.cluster.subset)?.labels ?? {}) : {};
    const requested = upstream.headers[':authority'].replace(/:\d+$/, '');
    const eps = destinationEndpoints(dsvc, cluster, requested).filter((e) => labelsMatch(labels, e.labels));
    if (eps.length === 0) {
      destinations.push({
        workload: `${clusterId(c.cluster)} (no endpoints)`,
        share: (100 * c.weight) / total,
        mtls: 'DISABLE',
        transport: 'refused',
        identityPresented: false,
        request: { method, authority: upstream.headers[':authority'], path: upstream.path, sourceIp: '' },
        status: 503,
        decision: 'DENY',
        stage: 'connection',
        reason: 'the destination has no endpoints: no healthy upstream (503)',
        matched: [],
      });
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
        destinations.push({
          workload: `${ep.address}:${epPort} (no sidecar)`,
          share,
          mtls: 'DISABLE',
          ...(cluster?.originate
            ? { transport: 'TLS' as const, tls: originationSummary(cluster.originate, o.proxy) }
            : { transport: cluster?.tls ? ('refused' as const) : ('plaintext' as const) }),
          identityPresented: false,
          request: seen,
          status: 200,
          decision: 'ALLOW',
          stage: 'authorization',
          reason: 'the endpoint has no sidecar: nothing enforces policy there',
          matched: [],
        });
        continue;
      }
      const verdict = (v: Omit<DestinationVerdict, 'workload' | 'share' | 'request'>): void => {
        destinations.push({ workload: w.id, share, request: seen, ...v });
      };
      if (isGatewayWorkload(model, w)) {
        // An egress (or any) gateway: its server, its own policies, then its routes (through-gateway.ts).
        const arrival = { req: upstream, method, sourceIp, destinationIp: ep.address };
        verdict(throughGateway(model, caller, cluster, w, epPort, arrival, o));
        continue;
      }
      const conn = connection(model, cluster, w, epPort);
      if (conn.transport === 'refused') {
        verdict({
          mtls: conn.mtls,
          transport: 'refused',
          identityPresented: false,
          status: 503,
          decision: 'DENY',
          stage: 'connection',
          reason: conn.reason,
          matched: [],
        });
        continue;
      }
      const { inbound, tls } = conn;
      const sec = inbound.security!;
      const transport: Transport = tls ? 'mTLS' : 'plaintext';
      const headers = Object.fromEntries(Object.entries(upstream.headers).filter(([k]) => !k.startsWith(':')));
      const facts: RequestFacts = {
        ...(tls ? { principal: caller.identity } : {}),
        sourceIp,
        remoteIp: remoteAddress(headers['x-forwarded-for'], sourceIp, model.mesh.numTrustedProxies, o.appended),
        destinationIp: ep.address,
        host: upstream.headers[':authority'],
        port: epPort,
        method,
        path: pathOnly(upstream.path),
        headers,
      };
      const asked = {
        ...(o.jwtClaims ? { jwtClaims: o.jwtClaims } : {}),
        ...(o.extAuthz ? { extAuthz: o.extAuthz } : {}),
      };
      const d = decideAt(sec, facts, inbound.http !== undefined, { ...asked, now, who: 'the callee' });
      verdict({ mtls: sec.mtls, transport, identityPresented: !!tls, ...d });
    }
  }
  const count = (x: DestinationVerdict['decision']) => destinations.filter((d) => d.decision === x).length;
  const [n, allowed, depends] = [destinations.length, count('ALLOW'), count('DEPENDS')];
  const verdict =
    n > 0 && allowed === n ? 'ALLOW' : n > 0 && depends === n ? 'DEPENDS' : allowed + depends === 0 ? 'DENY' : 'MIXED';
  const statuses = [...new Set(destinations.map((d) => d.status))];
  const note = abort
    ? `fault injection: ${abort.percent}% of requests are aborted with ${abort.status} by ${o.proxy}`
    : undefined;
  const status = statuses.length === 1 && statuses[0] !== undefined ? { status: statuses[0] } : {};
  return { ...routed, verdict, destinations, ...status, ...(note ? { note } : {}) };
}
