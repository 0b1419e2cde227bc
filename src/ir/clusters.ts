/**
 * Stage: ir. Outbound clusters: one per (service, port, subset) a proxy can reach, with the subset's endpoints, the
 * DestinationRule traffic policy, and client-side mTLS (automatic for mesh workloads; DestinationRule tls mode
 * ISTIO_MUTUAL forces it, DISABLE turns it off).
 */
import { endpointPort, labelsMatch, type MeshModel, type Service } from '../model/mesh-model.js';
import { serviceByHost } from '../model/index.js';
import { track } from '../model/tracking.js';
import { destinationRuleFor, subsetOf, trafficPolicyFor } from '../model/routing.js';
import { DerivedCache, defineDependency } from './dependencies.js';
import { upstreamTls } from './inbound-security.js';
import type { TlsOrigination } from '../policy/traffic-types.js';
import { SYSTEM_CA_BUNDLE } from '../policy/types.js';
import type { ClusterIR, ClusterKey } from './types.js';

/**
 * A wildcard host (`*.example.com`): only a DYNAMIC_DNS ServiceEntry declares one, so its clusters are dynamic
 * forward proxies and the routes to them need Envoy's dynamic forward proxy filter.
 */
export function isDynamicHost(host: string): boolean {
  return host.startsWith('*.');
}

export function clusterId(k: ClusterKey): string {
  if (k.direction === 'inbound') return `inbound|${pad(k.port)}`;
  if (k.direction === 'jwks') return `jwks|${k.host}|${pad(k.port)}`;
  if (k.direction === 'telemetry') return `telemetry|${k.host}|${pad(k.port)}`;
  return `outbound|${k.host}|${String(k.port).padStart(5, '0')}|${k.subset ?? ''}`;
}

function pad(n: number): string {
  return String(n).padStart(5, '0');
}

/** Adds the cluster for `svc:port[/subset]` to the proxy's set (once). */
export function ensureOutboundCluster(
  clusters: Map<string, ClusterIR>,
  model: MeshModel,
  svc: Service,
  port: number,
  subset?: string,
): ClusterKey {
  const key: ClusterKey = { direction: 'outbound', host: svc.host, port, ...(subset ? { subset } : {}) };
  const id = clusterId(key);
  // The same object for every proxy that reaches this destination: built once per model, translated and
  // encoded once downstream (serialize once, fan out).
  track(`cl:${id}`);
  if (!clusters.has(id)) clusters.set(id, sharedCluster(model, id));
  return key;
}

/** The outbound cluster `id` of a model, or undefined when its service no longer exists. */
export function outboundClusterOf(model: MeshModel, id: string): ClusterIR | undefined {
  return serviceByHost(model, id.split('|')[1]) ? sharedCluster(model, id) : undefined;
}

const sharedClusters = new DerivedCache<ClusterIR>();

function sharedCluster(model: MeshModel, id: string): ClusterIR {
  return sharedClusters.get(model, id, () => {
    const [, host, portS, subset] = id.split('|');
    return buildOutboundCluster(model, serviceByHost(model, host)!, Number(portS), subset || undefined);
  });
}

// A proxy that uses a shared cluster depends on it as a whole. The cluster stands while its service does and its
// own dependencies are unchanged (then the cache carries over the same object).
defineDependency(
  'cl',
  outboundClusterOf,
  (before, now, id, unchanged) =>
    unchanged(`svc:${id.split('|')[1]}`) && sharedClusters.carryOver(id, before, now, unchanged),
);

function buildOutboundCluster(model: MeshModel, svc: Service, port: number, subset?: string): ClusterIR {
  track('mesh');
  const key: ClusterKey = { direction: 'outbound', host: svc.host, port, ...(subset ? { subset } : {}) };
  const sp = svc.ports.find((p) => p.number === port)!;
  const labels = subset ? (subsetOf(model, svc.host, subset)?.labels ?? {}) : {};
  // NONE: the host's own address, as the application would have dialled it (policy/kinds/service-entry.ts).
  const dns = svc.resolution === 'DNS' || svc.resolution === 'DNS_ROUND_ROBIN' || svc.resolution === 'NONE';
  const endpoints = svc.endpoints.filter((ep) => labelsMatch(labels, ep.labels));
  const { tls: tlsMode, ...policy } = trafficPolicyFor(model, svc.host, port, subset) ?? {};
  const dr = destinationRuleFor(model, svc.host);
  const dynamic = svc.resolution === 'DYNAMIC_DNS';
  const cluster: ClusterIR = {
    key,
    discovery: dynamic ? 'dfp' : dns ? 'dns' : 'eds',
    protocol: sp.protocol,
    endpoints:
      dns && svc.endpoints.length === 0
        ? [{ address: svc.host, port: sp.targetPort ?? port, origin: svc.origin }] // Istio: at the targetPort
        : endpoints.map((ep) => ({
            address: ep.address,
            port: endpointPort(svc, sp, ep),
            ...(ep.weight !== undefined ? { weight: ep.weight } : {}),
            ...(ep.locality !== undefined ? { locality: ep.locality } : {}),
            origin: ep.origin,
          })),
    origins: [svc.origin, ...(dr ? [dr.origin] : [])],
  };
  if (Object.keys(policy).length > 0) cluster.policy = policy;
  const auto = upstreamTls(model, svc, port);
  if (typeof tlsMode === 'object' && tlsMode.mode !== 'ISTIO_MUTUAL') {
    cluster.originate = origination(tlsMode, svc);
  } else if (typeof tlsMode === 'object') {
    cluster.tls = { ...meshMtls(model, svc, auto), sni: tlsMode.sni };
  } else if (tlsMode === 'ISTIO_MUTUAL') {
    cluster.tls = meshMtls(model, svc, auto);
  } else if (tlsMode !== 'DISABLE' && auto) {
    cluster.tls = auto;
  }
  return cluster;
}

/** DestinationRule ISTIO_MUTUAL: the mesh's mTLS, verifying the service's identities (automatic or declared). */
function meshMtls(model: MeshModel, svc: Service, auto: { sans: string[] } | undefined): { sans: string[] } {
  if (auto) return auto;
  const ids = svc.endpoints.map((e) => `spiffe://${model.mesh.trustDomain}/ns/${svc.namespace}/sa/${e.serviceAccount}`);
  return { sans: [...new Set([...ids, ...svc.subjectAltNames])].sort() };
}

/**
 * DestinationRule SIMPLE / MUTUAL: Envoy originates TLS itself. SNI is `sni`, else the service host. The server is
 * verified against `caCertificates` (the system's CA bundle by default) or, with `credentialName`, the credential's
 * ca.crt (Istio's rule for SIMPLE and MUTUAL alike), and `subjectAltNames` (by default the ServiceEntry's, else
 * the SNI), unless insecureSkipVerify. MUTUAL presents the files' or the credential's certificate.
 */
function origination(t: TlsOrigination, svc: Service): NonNullable<ClusterIR['originate']> {
  if (svc.resolution === 'DYNAMIC_DNS') return perRequestOrigination(t);
  const sni = t.sni ?? svc.host;
  // The rule's names, else the ServiceEntry's (Istio), else the SNI.
  const named = t.subjectAltNames.length > 0 ? t.subjectAltNames : svc.subjectAltNames;
  const sans = named.length > 0 ? named : [sni];
  const cred = t.credential?.name;
  const ca = cred !== undefined ? { caCredential: cred } : { caFile: t.caCertificates ?? SYSTEM_CA_BUNDLE };
  const verify = t.insecureSkipVerify ? {} : { verify: { sans, ...ca } };
  if (t.mode !== 'MUTUAL') return { sni, ...verify };
  const client = cred !== undefined ? { credential: cred } : { certFile: t.clientCertificate!, keyFile: t.privateKey! };
  return { sni, ...verify, client };
}

/**
 * Origination to a wildcard (DYNAMIC_DNS) service: each request's Host is the SNI and the name verified, as Istio
 * does for dynamic forward proxy clusters (a fixed `sni` or `subjectAltNames` is rejected in the model).
 */
function perRequestOrigination(t: TlsOrigination): NonNullable<ClusterIR['originate']> {
  const cred = t.credential?.name;
  const ca = cred !== undefined ? { caCredential: cred } : { caFile: t.caCertificates ?? SYSTEM_CA_BUNDLE };
  const verify = t.insecureSkipVerify ? {} : { verify: { sans: [], ...ca } };
  const base = { sni: '', perRequest: true as const, ...verify };
  if (t.mode !== 'MUTUAL') return base;
  const client = cred !== undefined ? { credential: cred } : { certFile: t.clientCertificate!, keyFile: t.privateKey! };
  return { ...base, client };
}
