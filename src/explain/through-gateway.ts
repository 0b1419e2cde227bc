/**
 * Stage: explain (Envoy-free). A mesh workload's request (or connection) arriving at a gateway's server through
 * its sidecar, as to an egress gateway: whether the connection is made (gateway-connection.ts, as graph judges it),
 * the gateway's own JWT and authorization on what it sees (the caller's identity with mesh mTLS), then where the
 * gateway sends it on: its route table's route (steps.ts's followRoute, from the gateway) or an L4 chain's tcp
 * route (tcp-steps.ts). The onward explanation is the destination's `beyond`.
 */
import { routeTableId } from '../ir/routes.js';
import type { ClusterIR } from '../ir/types.js';
import type { MeshModel, Workload } from '../model/mesh-model.js';
import type { RequestFacts } from './authz.js';
import { virtualHostFor } from './explain-gateway.js';
import { gatewayConnection, type GatewayConnection } from './gateway-connection.js';
import {
  decideAt,
  followRoute,
  pathOnly,
  proxyOf,
  remoteAddress,
  routeMatches,
  where,
  type DestinationVerdict,
  type Explanation,
  type FollowOptions,
  type GatewayHop,
  type HttpRequest,
} from './steps.js';
import { followTcp, l4Decision, tcpVerdict } from './tcp-steps.js';

export type GatewayVerdict = Omit<DestinationVerdict, 'workload' | 'share' | 'request'>;

export type Connected = Exclude<GatewayConnection, { transport: 'refused' }>;

/** Where a request arrives: the caller's sidecar's view of it, after its route's rewrites. */
export interface Arrival {
  req: HttpRequest;
  method: string;
  sourceIp: string;
  destinationIp: string;
}

const onward = (d: Explanation['verdict']): DestinationVerdict['decision'] =>
  d === 'ALLOW' || d === 'DENY' ? d : 'DEPENDS';

/** How a made connection meets the gateway's server: mesh mTLS (the caller's identity arrives) or plaintext. */
export function connectedTo(conn: Connected) {
  const mTLS = conn.transport === 'mTLS';
  const c = conn.chain;
  const tls: GatewayHop['tls'] = c.tls?.mode ?? (c.serverNames.length > 0 ? 'PASSTHROUGH' : 'plaintext');
  return {
    mtls: mTLS ? ('STRICT' as const) : ('DISABLE' as const),
    transport: conn.transport,
    identityPresented: mTLS,
    server: { name: c.servers.join(', '), tls },
  };
}

/** The connection, then (if made) what the gateway decides and where it sends the request. */
export function throughGateway(
  model: MeshModel,
  caller: Workload,
  cluster: ClusterIR | undefined,
  gw: Workload,
  port: number,
  a: Arrival,
  o: FollowOptions,
): GatewayVerdict {
  const conn = gatewayConnection(model, cluster, gw, port);
  if (conn.transport === 'refused') {
    const reason = `${conn.reason}: the connection fails (503)`;
    const none = { mtls: 'DISABLE' as const, transport: 'refused' as const, identityPresented: false, matched: [] };
    return { ...none, status: 503, decision: 'DENY', stage: 'connection', reason };
  }
  const base = connectedTo(conn);
  const mTLS = base.identityPresented;
  const headers = Object.fromEntries(Object.entries(a.req.headers).filter(([k]) => !k.startsWith(':')));
  const facts: RequestFacts = {
    ...(mTLS ? { principal: caller.identity } : {}),
    sourceIp: a.sourceIp,
    remoteIp: remoteAddress(headers['x-forwarded-for'], a.sourceIp, model.mesh.numTrustedProxies, o.appended),
    destinationIp: a.destinationIp,
    host: a.req.headers[':authority'],
    port,
    method: a.method,
    path: pathOnly(a.req.path),
    headers,
  };
  if (!conn.chain.rds) return { ...base, ...gatewayL4(model, gw, conn, facts) };
  const asked = { ...(o.jwtClaims ? { jwtClaims: o.jwtClaims } : {}), ...(o.extAuthz ? { extAuthz: o.extAuthz } : {}) };
  const d = decideAt(conn.security, facts, true, { ...asked, now: o.now, who: 'the gateway' });
  if (d.decision !== 'ALLOW') return { ...base, ...d };
  // Routing at the gateway: the chain's route table, the virtual host for the Host (port ignored), the route.
  const rds = routeTableId(conn.chain.rds);
  const table = proxyOf(model, gw.id).routeTables.find((t) => routeTableId(t.key) === rds);
  const authority = a.req.headers[':authority'];
  const vh = table ? virtualHostFor(table.virtualHosts, authority.replace(/:\d+$/, '')) : undefined;
  const req: HttpRequest = {
    path: a.req.path,
    headers: { ...facts.headers, ':method': a.method, ':authority': authority },
  };
  const route = vh?.routes.find((r) => routeMatches(r, req));
  if (!route) {
    const reason = `${d.reason} at the gateway, which routes no VirtualService bound to it for this request: 404`;
    return { ...base, ...d, status: 404, decision: 'DENY', reason };
  }
  const routed: Explanation = {
    from: { workload: gw.id, identity: gw.identity },
    to: { host: authority, port },
    verdict: 'DENY',
    routed: true,
    egress: `${conn.listener.address}:${port}`,
    route: { name: route.name, at: where(route.origins[0]), kind: route.action.kind },
    destinations: [],
  };
  const next = { ...o, routed, appended: a.sourceIp, proxy: 'the gateway' };
  const beyond = followRoute(model, gw, route, req, next);
  const reason = `${d.reason} at the gateway; then the gateway's route ${route.name}`;
  const status = beyond.status !== undefined ? { status: beyond.status } : {};
  return { ...base, ...d, ...status, decision: onward(beyond.verdict), reason, beyond };
}

/** An L4 chain: the gateway's L4 rules on the connection, then its tcp route's destinations. */
export function gatewayL4(model: MeshModel, gw: Workload, conn: Connected, facts: RequestFacts) {
  const l4: RequestFacts = { ...facts, host: '', method: '', path: '', headers: {} };
  const d = l4Decision(conn.security, l4, 'the gateway');
  if (d.decision !== 'ALLOW') return d;
  const tcp = conn.chain.tcp!;
  const destinations = followTcp(model, gw, tcp);
  const beyond: Explanation = {
    from: { workload: gw.id, identity: gw.identity },
    to: { host: facts.host, port: facts.port },
    verdict: tcpVerdict(destinations),
    routed: true,
    egress: `${conn.listener.address}:${conn.listener.port}`,
    route: { name: tcp.route, kind: 'tcp' },
    destinations,
  };
  const reason = `${d.reason} at the gateway; then the gateway's tcp route ${tcp.route}`;
  return { ...d, decision: onward(beyond.verdict), reason, beyond };
}
