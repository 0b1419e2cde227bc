/**
 * Stage: ir. MeshModel x workload -> ProxyIR. Scoped: a proxy gets clusters and routes only for the services its
 * Sidecar egress lets it reach, so its config does not grow with the rest of the mesh. Output is sorted.
 */
import type { MeshModel, Service, Workload } from '../model/mesh-model.js';
import { inboundPlans, outboundPlans, tcpEgressTarget } from '../model/sidecars.js';
import { virtualServiceFor } from '../model/routing.js';
import { tcpRouteMatches } from '../policy/kinds/virtual-service-tcp.js';
import type { Origin } from '../diag/diagnostic.js';
import { isHttpProtocol } from '../policy/types.js';
import { clusterId, ensureOutboundCluster } from './clusters.js';
import { serviceByHost } from '../model/index.js';
import { inboundSecurity, parseJwksUri } from './inbound-security.js';
import { inboundRoutes, serviceRoutes } from './routes.js';
import { telemetryFor } from '../model/telemetry.js';
import { track } from '../model/tracking.js';
import type { ClusterIR, ClusterKey, ListenerIR, ProxyIR, RouteTableIR, RouteTableKey } from './types.js';
import type { TelemetryIR, VirtualHostIR } from './types.js';
import { isGatewayWorkload, matchApplies, MESH_GATEWAY } from '../model/gateways.js';
import type { GatewayName } from '../policy/traffic-types.js';
import { compileGateway, type ProxyParts } from './gateway.js';
import { forwardTo, sidecarTlsChains } from './l4-routes.js';
import { requestHandling } from './request-normalization.js';
import { routeTableId } from './routes.js';

export function compileProxy(model: MeshModel, w: Workload): ProxyIR {
  track('mesh');
  track(`wl:${w.id}`);
  // A workload a Gateway selects runs a gateway Envoy: the Gateway's servers instead of sidecar listeners.
  const parts = isGatewayWorkload(model, w) ? compileGateway(model, w) : compileSidecar(model, w);
  const { listeners, clusters, routeTables } = parts;
  addTelemetry(model, w, listeners, clusters);
  addExtAuthzClusters(model, listeners, clusters);
  addJwksClusters(listeners, clusters);
  return {
    node: {
      id: w.id,
      namespace: w.namespace,
      name: w.name,
      address: w.address,
      serviceAccount: w.serviceAccount,
      identity: w.identity,
    },
    listeners: listeners.sort((a, b) =>
      cmpStr(`${a.direction}|${a.address}|${pad(a.port)}`, `${b.direction}|${b.address}|${pad(b.port)}`),
    ),
    routeTables: routeTables.sort((a, b) => cmpStr(routeTableId(a.key), routeTableId(b.key))),
    clusters: [...clusters.entries()].sort(([a], [b]) => cmpStr(a, b)).map(([, c]) => c),
  };
}

function compileSidecar(model: MeshModel, w: Workload): ProxyParts {
  const listeners: ListenerIR[] = [];
  const clusters = new Map<string, ClusterIR>();
  const routeTables: RouteTableIR[] = [];
  for (const p of inboundPlans(w, model)) {
    const cluster: ClusterKey = { direction: 'inbound', port: p.port };
    clusters.set(clusterId(cluster), {
      key: cluster,
      discovery: 'static',
      protocol: p.protocol,
      endpoints: [{ address: p.app.address, port: p.app.port, origin: p.origin }],
      origins: [p.origin],
    });
    const listener: ListenerIR = {
      direction: 'inbound',
      address: p.address,
      port: p.port,
      protocol: p.protocol,
      origins: [p.origin],
      security: inboundSecurity(model, w, p.port, !isHttpProtocol(p.protocol)),
    };
    if (isHttpProtocol(p.protocol)) {
      const routes = inboundRoutes(model, w, cluster, p.origin);
      listener.http = { inline: [{ name: 'inbound', domains: ['*'], routes }], requests: requestHandling(model) };
    } else {
      listener.tcp = { cluster };
    }
    listeners.push(listener);
  }

  for (const p of outboundPlans(w, model)) {
    if (!isHttpProtocol(p.protocol)) {
      // TCP egress: one listener, one destination (checked in the model; a bad one was rejected there).
      const target = tcpEgressTarget(p);
      if ('error' in target) continue;
      const routed = tcpRoute(model, w, target, clusters, p.origin);
      // A TLS port whose host has tls routes that hold here: chosen by SNI instead (l4-routes.ts).
      const tls = p.protocol === 'TLS' || p.protocol === 'HTTPS';
      const sni = tls ? sidecarTlsChains(model, w, target, clusters) : { chains: [], origins: [] };
      if (sni.chains.length > 0) {
        routed.tcp = { cluster: sni.chains[0].cluster, service: routed.tcp!.service!, sni: sni.chains };
        routed.origins = [p.origin, ...sni.origins];
      }
      listeners.push({ direction: 'outbound', address: p.bind, port: p.port, protocol: 'TCP', ...routed });
      continue;
    }
    const virtualHosts: VirtualHostIR[] = [];
    for (const svc of p.services) {
      const httpPorts = svc.ports.filter((sp) => isHttpProtocol(sp.protocol));
      if (httpPorts.length === 0) continue;
      // `host` alone goes to the first HTTP port (port 80 when declared); `host:port` to that port.
      const main = httpPorts.find((sp) => sp.number === 80) ?? httpPorts[0];
      for (const sp of httpPorts) {
        // ServiceEntry addresses route like the host: an application may dial the address with it as Host.
        const names = [svc.host, ...svc.addresses.map((a) => (a.includes(':') ? `[${a}]` : a))];
        const domains = names.flatMap((n) => (sp === main ? [n, `${n}:${sp.number}`] : [`${n}:${sp.number}`]));
        virtualHosts.push({
          name: sp === main ? svc.host : `${svc.host}:${sp.number}`,
          domains,
          routes: serviceRoutes(model, w, svc, sp.number, clusters),
        });
      }
    }
    const key: RouteTableKey = { kind: 'outbound', port: p.port };
    routeTables.push({ key, virtualHosts });
    const http = { rds: key, requests: requestHandling(model) };
    listeners.push({
      direction: 'outbound',
      address: p.bind,
      port: p.port,
      protocol: 'HTTP',
      http,
      origins: [p.origin],
    });
  }

  return { listeners, clusters, routeTables };
}

/** Access logs and tracing from Telemetry, on every HTTP listener; tracing needs a cluster to the collector. */
function addTelemetry(model: MeshModel, w: Workload, listeners: ListenerIR[], clusters: Map<string, ClusterIR>): void {
  const tel = telemetryFor(model, w);
  const telemetry: TelemetryIR = { accessLog: tel.accessLog };
  if (tel.tracing) {
    const key: ClusterKey = { direction: 'telemetry', host: tel.tracing.service, port: tel.tracing.port };
    const ip = /^\d{1,3}(\.\d{1,3}){3}$/.test(key.host);
    const endpoints = [{ address: key.host, port: key.port, origin: tel.origins[tel.origins.length - 1] }];
    const discovery = ip ? 'static' : 'dns';
    clusters.set(clusterId(key), { key, discovery, protocol: 'GRPC', endpoints, origins: tel.origins });
    telemetry.tracing = { cluster: key, samplingPercentage: tel.tracing.samplingPercentage, serviceName: w.id };
  }
  for (const l of listeners) if (l.http) l.telemetry = telemetry;
}

/** The external authorizer's cluster, whatever the Sidecar's egress scope says: the proxy itself calls it. */
function addExtAuthzClusters(model: MeshModel, listeners: ListenerIR[], clusters: Map<string, ClusterIR>): void {
  for (const l of listeners) {
    const x = l.security?.extAuthz;
    if (x) ensureOutboundCluster(clusters, model, serviceByHost(model, x.authority)!, x.provider.port);
  }
}

/** Clusters through which Envoy fetches remote JWKS for the workload's RequestAuthentications. */
function addJwksClusters(listeners: ListenerIR[], clusters: Map<string, ClusterIR>): void {
  for (const l of listeners) {
    for (const p of l.security?.jwt ?? []) {
      if (!p.rule.jwksUri) continue;
      const u = parseJwksUri(p.rule.jwksUri);
      const key: ClusterKey = { direction: 'jwks', host: u.host, port: u.port, tls: u.tls };
      const endpoints = [{ address: u.host, port: u.port, origin: p.rule.at }];
      clusters.set(clusterId(key), { key, discovery: 'dns', protocol: 'HTTP', endpoints, origins: [p.rule.at] });
    }
  }
}

/**
 * Where a TCP egress listener sends a connection: the first VirtualService tcp route of the target host that
 * selects this caller and port (weighted destinations), else the target service itself.
 */
function tcpRoute(
  model: MeshModel,
  w: Workload,
  target: { svc: Service; port: number },
  clusters: Map<string, ClusterIR>,
  origin: Origin,
): Pick<ListenerIR, 'tcp' | 'origins'> {
  const vs = virtualServiceFor(model, target.svc.host);
  const here = (m: { gateways?: GatewayName[] }) => matchApplies(m, vs!.namespace, MESH_GATEWAY);
  const i = vs?.spec.tcp.findIndex((r) => tcpRouteMatches(r, target.port, w, here)) ?? -1;
  const service = { host: target.svc.host, port: target.port };
  if (!vs || i < 0) {
    return {
      tcp: { cluster: ensureOutboundCluster(clusters, model, target.svc, target.port), service },
      origins: [origin],
    };
  }
  const r = vs.spec.tcp[i];
  const forward = forwardTo(model, r.route, clusters, () => target.port);
  const route = `${vs.namespace}/${vs.name}/tcp[${i}]`;
  const tcp = { ...forward, service, route };
  return { tcp, origins: [origin, r.at] };
}

function pad(n: number): string {
  return String(n).padStart(5, '0');
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
