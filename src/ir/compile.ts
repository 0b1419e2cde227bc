/**
 * Stage: ir. MeshModel x workload -> ProxyIR. Scoped: a proxy gets clusters and routes only for the services its
 * Sidecar egress lets it reach, so its config does not grow with the rest of the mesh. Output is sorted.
 */
import type { Origin } from '../diag/diagnostic.js';
import { endpointPort, type MeshModel, type Service, type Workload } from '../model/mesh-model.js';
import { inboundPlans, outboundPlans } from '../model/sidecars.js';
import { isHttpProtocol } from '../policy/types.js';
import { inboundSecurity, parseJwksUri, upstreamTls } from './inbound-security.js';
import { telemetryFor } from '../model/telemetry.js';
import type { ClusterIR, ClusterKey, ListenerIR, ProxyIR, RouteTableIR, TelemetryIR, VirtualHostIR } from './types.js';

export function compileProxy(model: MeshModel, w: Workload): ProxyIR {
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
      security: inboundSecurity(model, w, p.port),
    };
    if (isHttpProtocol(p.protocol)) {
      listener.http = { inline: [{ name: 'inbound', domains: ['*'], routes: [{ prefix: '/', cluster, origins: [p.origin] }] }] };
    } else {
      listener.tcp = { cluster };
    }
    listeners.push(listener);
  }

  for (const p of outboundPlans(w, model)) {
    const virtualHosts: VirtualHostIR[] = [];
    for (const svc of p.services) {
      const httpPorts = svc.ports.filter((sp) => isHttpProtocol(sp.protocol));
      if (httpPorts.length === 0) continue;
      for (const sp of httpPorts) addServiceCluster(clusters, svc, sp.number);
      // `host` alone goes to the first HTTP port (port 80 when declared); `host:port` to that port.
      const main = httpPorts.find((sp) => sp.number === 80) ?? httpPorts[0];
      const origins: Origin[] = [svc.origin];
      virtualHosts.push({
        name: svc.host,
        domains: [svc.host, `${svc.host}:${main.number}`],
        routes: [{ prefix: '/', cluster: { direction: 'outbound', host: svc.host, port: main.number }, origins }],
      });
      for (const sp of httpPorts) {
        if (sp === main) continue;
        virtualHosts.push({
          name: `${svc.host}:${sp.number}`,
          domains: [`${svc.host}:${sp.number}`],
          routes: [{ prefix: '/', cluster: { direction: 'outbound', host: svc.host, port: sp.number }, origins }],
        });
      }
    }
    routeTables.push({ port: p.port, virtualHosts });
    listeners.push({ direction: 'outbound', address: p.bind, port: p.port, protocol: 'HTTP', http: { rds: p.port }, origins: [p.origin] });
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

  // Clusters through which Envoy fetches remote JWKS for the workload's RequestAuthentications.
  for (const l of listeners) {
    for (const p of l.security?.jwt ?? []) {
      if (!p.rule.jwksUri) continue;
      const u = parseJwksUri(p.rule.jwksUri);
      const key: ClusterKey = { direction: 'jwks', host: u.host, port: u.port, tls: u.tls };
      clusters.set(clusterId(key), { key, discovery: 'dns', protocol: 'HTTP', endpoints: [{ address: u.host, port: u.port, origin: p.rule.at }], origins: [p.rule.at] });
    }
  }

  // Client-side mTLS for every outbound cluster whose destination runs sidecars.
  for (const c of clusters.values()) {
    if (c.key.direction !== 'outbound') continue;
    const host = c.key.host;
    const svc = model.services.find((s) => s.host === host);
    const tls = svc ? upstreamTls(model, svc, c.key.port) : undefined;
    if (tls) c.tls = tls;
  }

  return {
    node: { id: w.id, namespace: w.namespace, name: w.name, address: w.address, serviceAccount: w.serviceAccount, identity: w.identity },
    revision: model.revision,
    listeners: listeners.sort((a, b) => cmpStr(`${a.direction}|${a.address}|${pad(a.port)}`, `${b.direction}|${b.address}|${pad(b.port)}`)),
    routeTables: routeTables.sort((a, b) => a.port - b.port),
    clusters: [...clusters.entries()].sort(([a], [b]) => cmpStr(a, b)).map(([, c]) => c),
  };
}

function addServiceCluster(clusters: Map<string, ClusterIR>, svc: Service, port: number): void {
  const key: ClusterKey = { direction: 'outbound', host: svc.host, port };
  const id = clusterId(key);
  if (clusters.has(id)) return;
  const sp = svc.ports.find((p) => p.number === port)!;
  const dns = svc.resolution === 'DNS' || svc.resolution === 'DNS_ROUND_ROBIN';
  clusters.set(id, {
    key,
    discovery: dns ? 'dns' : 'eds',
    protocol: sp.protocol,
    endpoints: dns && svc.endpoints.length === 0
      ? [{ address: svc.host, port, origin: svc.origin }]
      : svc.endpoints.map((ep) => ({
          address: ep.address,
          port: endpointPort(svc, sp, ep),
          ...(ep.weight !== undefined ? { weight: ep.weight } : {}),
          ...(ep.locality !== undefined ? { locality: ep.locality } : {}),
          origin: ep.origin,
        })),
    origins: [svc.origin],
  });
}

/** A stable sort key for a cluster (not its Envoy name, which xds/names.ts owns). */
export function clusterId(k: ClusterKey): string {
  if (k.direction === 'inbound') return `inbound|${pad(k.port)}`;
  if (k.direction === 'jwks') return `jwks|${k.host}|${pad(k.port)}`;
  if (k.direction === 'telemetry') return `telemetry|${k.host}|${pad(k.port)}`;
  return `outbound|${k.host}|${pad(k.port)}|${k.subset ?? ''}`;
}

function pad(n: number): string {
  return String(n).padStart(5, '0');
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
