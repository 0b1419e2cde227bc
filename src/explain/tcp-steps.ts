/**
 * Stage: explain (Envoy-free). What a TCP connection meets once a proxy forwards it (a sidecar's TCP egress
 * listener, a gateway's L4 chain): the route's weighted destinations, and at each endpoint whether the connection
 * is made (mTLS, steps.ts's connection()) and what the callee's L4 authorization decides (authz.ts, on the trees
 * ir/authz.ts lowered for TCP). There is no HTTP status: a denial closes the connection.
 */
import { serviceByHost, workloadById } from '../model/index.js';
import { endpointPort, labelsMatch, type MeshModel, type Service, type Workload } from '../model/mesh-model.js';
import { subsetOf } from '../model/routing.js';
import { isLoopback } from '../model/sidecars.js';
import type { ClusterIR, InboundSecurityIR, TcpForwardIR } from '../ir/types.js';
import { evaluate, type RequestFacts } from './authz.js';
import { callerCluster, connection, where, type Decision, type DestinationVerdict } from './steps.js';
import { destinationEndpoints, originationSummary } from './upstream-tls.js';
import { gatewayConnection } from './gateway-connection.js';
import { isGatewayWorkload } from '../model/gateways.js';
import { connectedTo, gatewayL4, type GatewayVerdict } from './through-gateway.js';

/** L4 authorization (RBAC network filter) at a proxy: allowed, or the connection is closed by `who`. */
export function l4Decision(sec: InboundSecurityIR, facts: RequestFacts, who: string): Decision {
  const d = evaluate(sec, facts);
  return {
    status: 0,
    decision: d.allowed ? 'ALLOW' : 'DENY',
    stage: 'authorization',
    reason: `${d.reason}${d.allowed ? '' : `: ${who} closes the connection`}`,
    ...(d.decidedBy ? { decidedBy: { name: d.decidedBy.name, at: where(d.decidedBy.at) } } : {}),
    matched: d.matched.map((m) => ({ name: m.name, action: m.action, at: where(m.at) })),
  };
}

/** Every endpoint a forward's (weighted) clusters reach from `caller`'s proxy, with its share and verdict. */
export function followTcp(model: MeshModel, caller: Workload, forward: Omit<TcpForwardIR, 'route'>) {
  const destinations: DestinationVerdict[] = [];
  const targets = forward.weighted ?? [{ cluster: forward.cluster, weight: 100 }];
  const total = targets.reduce((n, t) => n + t.weight, 0);
  for (const t of targets) {
    if (t.cluster.direction !== 'outbound') continue;
    const cluster = callerCluster(model, caller, t.cluster);
    const svc = serviceByHost(model, t.cluster.host)!;
    const sp = svc.ports.find((p) => p.number === (t.cluster as { port: number }).port)!;
    const subset = t.cluster.subset ? (subsetOf(model, svc.host, t.cluster.subset)?.labels ?? {}) : {};
    const eps = destinationEndpoints(svc, cluster).filter((e) => labelsMatch(subset, e.labels));
    for (const ep of eps)
      destinations.push(tcpDestination(model, caller, cluster, svc, sp, ep, (100 * t.weight) / total / eps.length));
  }
  return destinations;
}

/** ALLOW when every destination allows, DENY when none does. */
export const tcpVerdict = (destinations: DestinationVerdict[]) => {
  const allowed = destinations.filter((d) => d.decision === 'ALLOW').length;
  return allowed === destinations.length && allowed > 0 ? 'ALLOW' : allowed === 0 ? 'DENY' : 'MIXED';
};

/** One endpoint of a TCP destination: the connection and the callee's L4 authorization. */
function tcpDestination(
  model: MeshModel,
  caller: Workload,
  cluster: ClusterIR | undefined,
  svc: Service,
  sp: Service['ports'][number],
  ep: Service['endpoints'][number],
  share: number,
): DestinationVerdict {
  const epPort = endpointPort(svc, sp, ep);
  const sourceIp = isLoopback(ep.address) ? '127.0.0.1' : caller.address;
  const seen = { method: '-', authority: svc.host, path: '-', sourceIp };
  const w = workloadById(model, ep.workload);
  if (!w) {
    const reason = 'the endpoint has no sidecar: nothing enforces policy there';
    const workload = `${ep.address}:${epPort} (no sidecar)`;
    const tls = cluster?.originate ? { tls: originationSummary(cluster.originate) } : {};
    return {
      workload,
      share,
      mtls: 'DISABLE',
      transport: cluster?.originate ? 'TLS' : 'plaintext',
      ...tls,
      identityPresented: false,
      request: seen,
      status: 0,
      decision: 'ALLOW',
      stage: 'authorization',
      reason,
      matched: [],
    };
  }
  if (isGatewayWorkload(model, w))
    return { workload: w.id, share, request: seen, ...toGateway(model, caller, cluster, w, epPort, seen) };
  const conn = connection(model, cluster, w, epPort);
  if (conn.transport === 'refused') {
    return {
      workload: w.id,
      share,
      mtls: conn.mtls,
      transport: 'refused',
      identityPresented: false,
      request: seen,
      status: 0,
      decision: 'DENY',
      stage: 'connection',
      reason: conn.reason,
      matched: [],
    };
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
  const transport = conn.tls ? ('mTLS' as const) : ('plaintext' as const);
  const d = l4Decision(sec, facts, 'the callee');
  return { workload: w.id, share, mtls: sec.mtls, transport, identityPresented: !!conn.tls, request: seen, ...d };
}

/** A connection a sidecar forwards to a gateway's server: made or not, then the gateway's L4 chain decides. */
function toGateway(
  model: MeshModel,
  caller: Workload,
  cluster: ClusterIR | undefined,
  gw: Workload,
  port: number,
  seen: DestinationVerdict['request'],
): GatewayVerdict {
  const conn = gatewayConnection(model, cluster, gw, port);
  const none = { identityPresented: false, status: 0, matched: [] };
  if (conn.transport === 'refused') {
    return {
      ...none,
      mtls: 'DISABLE',
      transport: 'refused',
      decision: 'DENY',
      stage: 'connection',
      reason: conn.reason,
    };
  }
  const base = connectedTo(conn);
  const mTLS = base.identityPresented;
  if (conn.chain.rds) {
    const reason = `${base.server.name} is an HTTP server: what the bytes ask for decides (explain an HTTP request)`;
    return { ...base, status: 0, decision: 'DEPENDS', stage: 'authorization', reason, matched: [] };
  }
  const facts: RequestFacts = {
    ...(mTLS ? { principal: caller.identity } : {}),
    sourceIp: seen.sourceIp,
    remoteIp: seen.sourceIp,
    destinationIp: conn.listener.address,
    host: seen.authority,
    port,
    method: '',
    path: '',
    headers: {},
  };
  return { ...base, ...gatewayL4(model, gw, conn, facts) };
}
