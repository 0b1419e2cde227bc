/**
 * Stage: ir. MeshModel x gateway workload -> the parts of its ProxyIR: a listener per address and port of its
 * Gateways' servers (model/gateways.ts decides which servers share one and which hosts each serves), a filter
 * chain per TLS server (chosen by SNI) or one for all plaintext servers of the port, a route table per chain from
 * the bound VirtualServices, a tcp_proxy chain per L4 server chain (model/gateway-l4.ts), and outbound clusters to
 * the mesh behind it (mTLS, as a sidecar's). Envoy-free.
 */
import type { MeshModel, Workload } from '../model/mesh-model.js';
import {
  gatewayListeners,
  refOf,
  routeTablesOf,
  serverHosts,
  serverName,
  sniNames,
  type GatewayListenerPlan,
  type ServerRef,
} from '../model/gateways.js';
import type { ServerTls, TlsVersion } from '../policy/gateway-types.js';
import { l4Chains, type L4ChainPlan } from '../model/gateway-l4.js';
import { forwardTo } from './l4-routes.js';
import { gatewaySecurity } from './inbound-security.js';
import { requestHandling } from './request-normalization.js';
import { virtualServiceRoutes } from './routes.js';
import type {
  ClusterIR,
  GatewayChainIR,
  ListenerIR,
  ProxyIR,
  RouteActionIR,
  RouteIR,
  RouteTableIR,
  RouteTableKey,
  ServerTlsIR,
  VirtualHostIR,
} from './types.js';

/** What a proxy compiles to before the parts every proxy gets (telemetry, JWKS clusters) are added. */
export interface ProxyParts {
  listeners: ListenerIR[];
  clusters: Map<string, ClusterIR>;
  routeTables: RouteTableIR[];
}

/** Istio's TLS version names -> Envoy's. */
const ENVOY_TLS: Record<TlsVersion, string> = {
  TLS_AUTO: 'TLS_AUTO',
  TLSV1_0: 'TLSv1_0',
  TLSV1_1: 'TLSv1_1',
  TLSV1_2: 'TLSv1_2',
  TLSV1_3: 'TLSv1_3',
};

/** Servers accept TLS 1.2 and up unless the Gateway says otherwise (Istio's gateway default too). */
const DEFAULT_MIN_TLS = 'TLSv1_2';

function serverTls(t: ServerTls): ServerTlsIR {
  const params = {
    minProtocolVersion: t.minProtocolVersion ? ENVOY_TLS[t.minProtocolVersion] : DEFAULT_MIN_TLS,
    ...(t.maxProtocolVersion ? { maxProtocolVersion: ENVOY_TLS[t.maxProtocolVersion] } : {}),
    cipherSuites: t.cipherSuites,
  };
  if (t.mode === 'ISTIO_MUTUAL') {
    return { mode: t.mode, ...params, subjectAltNames: [], verifyCertificateSpki: [], verifyCertificateHash: [] };
  }
  return {
    mode: t.mode,
    credential: t.credentialName,
    ...params,
    subjectAltNames: t.subjectAltNames,
    verifyCertificateSpki: t.verifyCertificateSpki,
    verifyCertificateHash: t.verifyCertificateHash,
  };
}

/** An L4 server's chain: a tcp_proxy to its route's destinations. */
function l4Chain(model: MeshModel, c: L4ChainPlan, clusters: Map<string, ClusterIR>): GatewayChainIR {
  const forward = forwardTo(model, c.destinations, clusters, (svc) => svc.ports[0].number);
  const tcp = { ...forward, route: c.route };
  const tls = c.server.server.tls;
  return { servers: [serverName(c.server)], serverNames: c.serverNames, ...(tls ? { tls: serverTls(tls) } : {}), tcp };
}

/** A server's httpsRedirect: every request, whatever it asks for, gets a 301 to https. */
function httpsRedirect(s: ServerRef, port: number | undefined): RouteIR {
  const action: RouteActionIR = { kind: 'redirect', code: 301, https: true, ...(port !== undefined ? { port } : {}) };
  return { name: `${serverName(s)}/httpsRedirect`, match: { headers: [], query: [] }, action, origins: [s.server.at] };
}

/** The virtual hosts of one route table: each domain once, with the routes of the VirtualService that owns it. */
function virtualHosts(
  model: MeshModel,
  w: Workload,
  servers: ServerRef[],
  port: number,
  clusters: Map<string, ClusterIR>,
): VirtualHostIR[] {
  const byDomain = new Map<string, VirtualHostIR>();
  for (const h of servers.flatMap((s) => serverHosts(model, s))) {
    if (byDomain.has(h.domain)) continue; // the same VirtualService through another server (conflicts are errors)
    const site = { ref: refOf(h.server.gateway), port };
    const redirect = h.redirect ? [httpsRedirect(h.server, h.redirect.port)] : [];
    const routes = h.vs ? virtualServiceRoutes(model, w, h.vs, site, clusters) : redirect;
    byDomain.set(h.domain, { name: `${h.domain}:${port}`, domains: [h.domain], routes });
  }
  return [...byDomain.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function listenerOf(model: MeshModel, w: Workload, plan: GatewayListenerPlan, parts: ProxyParts): ListenerIR {
  const chains: GatewayChainIR[] = [];
  const tables = routeTablesOf(plan);
  for (const servers of tables) {
    const tls = plan.tls ? servers[0].server.tls : undefined;
    const server = tls ? { server: serverName(servers[0]) } : {};
    const rds: RouteTableKey = { kind: 'gateway', address: plan.address, port: plan.port, ...server };
    parts.routeTables.push({ key: rds, virtualHosts: virtualHosts(model, w, servers, plan.port, parts.clusters) });
    const serverNames = tls ? sniNames(servers[0].server) : [];
    chains.push({ servers: servers.map(serverName), serverNames, ...(tls ? { tls: serverTls(tls) } : {}), rds });
  }
  const l4 = plan.servers.flatMap((s) => l4Chains(model, s)).map((c) => l4Chain(model, c, parts.clusters));
  chains.push(...l4);
  // The listener's protocol is its HTTP servers' (HTTPS: HTTP over TLS), else TCP or TLS (passthrough HTTPS too).
  const http = tables[0]?.[0].server.port.protocol;
  const bytes = plan.tls ? 'TLS' : 'TCP';
  const protocol = http === undefined ? bytes : http === 'HTTPS' ? 'HTTP' : http;
  return {
    direction: 'gateway',
    address: plan.address,
    port: plan.port,
    protocol,
    ...(tables.length > 0 ? { http: { requests: requestHandling(model) } } : {}),
    gateway: { chains, ...(l4.length > 0 ? { l4Security: gatewaySecurity(model, w, true) } : {}) },
    security: gatewaySecurity(model, w),
    origins: plan.servers.map((s) => s.server.at),
  };
}

export function compileGateway(model: MeshModel, w: Workload): ProxyParts {
  const parts: ProxyParts = { listeners: [], clusters: new Map(), routeTables: [] };
  for (const plan of gatewayListeners(model, w)) parts.listeners.push(listenerOf(model, w, plan, parts));
  return parts;
}

/** The credentials a proxy's listeners terminate TLS with: what it must receive over SDS (and nothing else). */
export function credentialsOf(ir: ProxyIR): string[] {
  const names = ir.listeners.flatMap((l) => l.gateway?.chains.flatMap((c) => c.tls?.credential ?? []) ?? []);
  return [...new Set(names)].sort();
}
