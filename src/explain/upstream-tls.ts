/**
 * Stage: explain (Envoy-free). What the caller's sidecar does towards a destination outside the mesh, read from its
 * cluster (ClusterIR): the TLS it originates (DestinationRule SIMPLE / MUTUAL, files or a credential), and, for a
 * DNS service without endpoints, the host Envoy resolves itself as the one endpoint (for DYNAMIC_DNS, the name
 * requested). Also which service a name or address stands for.
 */
import { serviceByHost } from '../model/index.js';
import type { MeshModel, Service, ServiceEndpoint } from '../model/mesh-model.js';
import type { ClusterIR } from '../ir/types.js';

/** How a cluster's originated TLS reads for people, e.g. `TLS MUTUAL originated by the caller's sidecar (...)`. */
export function originationSummary(o: NonNullable<ClusterIR['originate']>, by = "the caller's sidecar"): string {
  const parts = [o.perRequest ? "SNI and server name from each request's Host" : `SNI ${o.sni}`];
  if (o.client) {
    const c = o.client;
    parts.push(`client certificate ${'credential' in c ? `from credential ${c.credential}` : `from ${c.certFile}`}`);
  }
  const v = o.verify;
  if (!v) parts.push('the server is not verified (insecureSkipVerify)');
  else {
    const ca = 'caCredential' in v ? `credential ${v.caCredential}'s ca.crt` : v.caFile;
    parts.push(`server verified with ${ca}${v.sans.length > 0 ? ` for ${v.sans.join(', ')}` : ''}`);
  }
  return `TLS ${o.client ? 'MUTUAL' : 'SIMPLE'} originated by ${by} (${parts.join(', ')})`;
}

/**
 * The endpoints a destination's requests go to: the service's own, or, for a DNS service without any, the host
 * that Envoy resolves (the cluster's one endpoint), with no sidecar behind it.
 */
export function destinationEndpoints(
  svc: Service,
  cluster: ClusterIR | undefined,
  requestedHost?: string,
): ServiceEndpoint[] {
  if (cluster?.discovery === 'dfp' && requestedHost) {
    // A dynamic forward proxy connects to the name the request asks for (DYNAMIC_DNS).
    return [{ address: requestedHost, ports: {}, labels: {}, serviceAccount: '', origin: svc.origin }];
  }
  if (svc.endpoints.length > 0 || cluster?.discovery !== 'dns') return svc.endpoints;
  return cluster.endpoints.map((e) => ({
    address: e.address,
    ports: {},
    labels: {},
    serviceAccount: '',
    origin: e.origin,
  }));
}

/**
 * The service `host` names: the one declaring it, else the one whose ServiceEntry addresses hold it, else the most
 * specific wildcard (DYNAMIC_DNS) host matching it, as Envoy picks the virtual host.
 */
export function serviceForName(model: MeshModel, host: string): Service | undefined {
  const exact = serviceByHost(model, host);
  if (exact) return exact;
  const byAddress = model.services.find((s) => s.addresses.includes(host));
  if (byAddress) return byAddress;
  const wild = model.services.filter((s) => s.host.startsWith('*.') && host.endsWith(s.host.slice(1)));
  return wild.sort((a, b) => b.host.length - a.host.length)[0];
}
