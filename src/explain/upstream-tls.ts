/**
 * Stage: explain (Envoy-free). What the caller's sidecar does towards a destination outside the mesh, read from its
 * cluster (ClusterIR): the TLS it originates (DestinationRule SIMPLE / MUTUAL, files or a credential), and, for a
 * DNS service without endpoints, the host Envoy resolves itself as the one endpoint.
 */
import type { Service, ServiceEndpoint } from '../model/mesh-model.js';
import type { ClusterIR } from '../ir/types.js';

/** How a cluster's originated TLS reads for people, e.g. `TLS MUTUAL originated by the caller's sidecar (...)`. */
export function originationSummary(o: NonNullable<ClusterIR['originate']>): string {
  const parts = [`SNI ${o.sni}`];
  if (o.client) {
    const c = o.client;
    parts.push(`client certificate ${'credential' in c ? `from credential ${c.credential}` : `from ${c.certFile}`}`);
  }
  const v = o.verify;
  if (!v) parts.push('the server is not verified (insecureSkipVerify)');
  else {
    const ca = 'caCredential' in v ? `credential ${v.caCredential}'s ca.crt` : v.caFile;
    parts.push(`server verified with ${ca} for ${v.sans.join(', ')}`);
  }
  return `TLS ${o.client ? 'MUTUAL' : 'SIMPLE'} originated by the caller's sidecar (${parts.join(', ')})`;
}

/**
 * The endpoints a destination's requests go to: the service's own, or, for a DNS service without any, the host
 * that Envoy resolves (the cluster's one endpoint), with no sidecar behind it.
 */
export function destinationEndpoints(svc: Service, cluster: ClusterIR | undefined): ServiceEndpoint[] {
  if (svc.endpoints.length > 0 || cluster?.discovery !== 'dns') return svc.endpoints;
  return cluster.endpoints.map((e) => ({
    address: e.address,
    ports: {},
    labels: {},
    serviceAccount: '',
    origin: e.origin,
  }));
}
