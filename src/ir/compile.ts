/**
 * Stage: ir. MeshModel x workload -> ProxyIR. Scoped: a proxy gets clusters and routes only for the services its
 * Sidecar egress lets it reach, so its config does not grow with the rest of the mesh. Output is sorted.
 */
import type { MeshModel, Workload } from '../model/mesh-model.js';
import { inboundPlans, outboundPlans, tcpEgressTarget } from '../model/sidecars.js';
import { isHttpProtocol } from '../policy/types.js';
import { clusterId, ensureOutboundCluster } from './clusters.js';
import { serviceByHost } from '../model/index.js';
import { inboundSecurity, parseJwksUri } from './inbound-security.js';
import { inboundRoutes, serviceRoutes } from './routes.js';
import { telemetryFor } from '../model/telemetry.js';
import { track } from '../model/tracking.js';
import type { ClusterIR, ClusterKey, ListenerIR, ProxyIR, RequestHandlingIR, RouteTableIR, TelemetryIR, VirtualHostIR } from './types.js';

export function compileProxy(model: MeshModel, w: Workload): ProxyIR {
  track('mesh');
  track(`wl:${w.id}`);
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
      const cluster = ensureOutboundCluster(clusters, model, target.svc, target.port);
      listeners.push({ direction: 'outbound', address: p.bind, port: p.port, protocol: 'TCP', tcp: { cluster }, origins: [p.origin] });
      continue;
    }
    const virtualHosts: VirtualHostIR[] = [];
    for (const svc of p.services) {
      const httpPorts = svc.ports.filter((sp) => isHttpProtocol(sp.protocol));
      if (httpPorts.length === 0) continue;
      // `host` alone goes to the first HTTP port (port 80 when declared); `host:port` to that port.
      const main = httpPorts.find((sp) => sp.number === 80) ?? httpPorts[0];
      for (const sp of httpPorts) {
        const domains = sp === main ? [svc.host, `${svc.host}:${sp.number}`] : [`${svc.host}:${sp.number}`];
        virtualHosts.push({ name: sp === main ? svc.host : `${svc.host}:${sp.number}`, domains, routes: serviceRoutes(model, w, svc, sp.number, clusters) });
      }
    }
    routeTables.push({ port: p.port, virtualHosts });
    listeners.push({ direction: 'outbound', address: p.bind, port: p.port, protocol: 'HTTP', http: { rds: p.port, requests: requestHandling(model) }, origins: [p.origin] });
  }

  // Access logs and tracing from Telemetry, on every HTTP listener; tracing needs a cluster to the collector.
  const tel = telemetryFor(model, w);
  const telemetry: TelemetryIR = { accessLog: tel.accessLog };
  if (tel.tracing) {
    const key: ClusterKey = { direction: 'telemetry', host: tel.tracing.service, port: tel.tracing.port };
    const ip = /^\d{1,3}(\.\d{1,3}){3}$/.test(key.host);
    clusters.set(clusterId(key), { key, discovery: ip ? 'static' : 'dns', protocol: 'GRPC', endpoints: [{ address: key.host, port: key.port, origin: tel.origins[tel.origins.length - 1] }], origins: tel.origins });
    telemetry.tracing = { cluster: key, samplingPercentage: tel.tracing.samplingPercentage, serviceName: w.id };
  }
  for (const l of listeners) if (l.http) l.telemetry = telemetry;

  // The external authorizer's cluster, whatever the Sidecar's egress scope says: the proxy itself calls it.
  for (const l of listeners) {
    const x = l.security?.extAuthz;
    if (x) ensureOutboundCluster(clusters, model, serviceByHost(model, x.authority)!, x.provider.port);
  }

  // Clusters through which Envoy fetches remote JWKS for the workload's RequestAuthentications.
  for (const l of listeners) {
    for (const p of l.security?.jwt ?? []) {
      if (!p.rule.jwksUri) continue;
      const u = parseJwksUri(p.rule.jwksUri);
      const key: ClusterKey = { direction: 'jwks', host: u.host, port: u.port, tls: u.tls };
      clusters.set(clusterId(key), { key, discovery: 'dns', protocol: 'HTTP', endpoints: [{ address: u.host, port: u.port, origin: p.rule.at }], origins: [p.rule.at] });
    }
  }

  return {
    node: { id: w.id, namespace: w.namespace, name: w.name, address: w.address, serviceAccount: w.serviceAccount, identity: w.identity },
    revision: model.revision,
    listeners: listeners.sort((a, b) => cmpStr(`${a.direction}|${a.address}|${pad(a.port)}`, `${b.direction}|${b.address}|${pad(b.port)}`)),
    routeTables: routeTables.sort((a, b) => a.port - b.port),
    clusters: [...clusters.entries()].sort(([a], [b]) => cmpStr(a, b)).map(([, c]) => c),
  };
}

/** The Mesh's request normalisation, the same on every HTTP connection manager. */
function requestHandling(model: MeshModel): RequestHandlingIR {
  return { pathNormalization: model.mesh.pathNormalization, numTrustedProxies: model.mesh.numTrustedProxies };
}

function pad(n: number): string {
  return String(n).padStart(5, '0');
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
