/**
 * Stage: xds. The ONE place where Envoy resource names are built. Cluster names follow Istio's
 * `direction|port|subset|host` form so that Envoy stats and logs read the same as in an Istio mesh.
 */
import type { ClusterKey, RouteTableKey } from '../ir/types.js';

export function clusterName(k: ClusterKey): string {
  if (k.direction === 'inbound') return `inbound|${k.port}||`;
  if (k.direction === 'jwks') return jwksClusterName(k);
  if (k.direction === 'telemetry') return `telemetry|${k.host}:${k.port}`;
  return `outbound|${k.port}|${k.subset ?? ''}|${k.host}`;
}

type Direction = 'inbound' | 'outbound' | 'gateway';

export function listenerName(direction: Direction, address: string, port: number): string {
  return `${direction}|${address}:${port}`;
}

/** `outbound|<port>`; a gateway's `gateway|<address>:<port>` (plaintext servers) or `...|<ns>/<gw>/servers[i]`. */
export function routeTableName(k: RouteTableKey): string {
  if (k.kind === 'outbound') return `outbound|${k.port}`;
  return `gateway|${k.address}:${k.port}${k.server ? `|${k.server}` : ''}`;
}

export function statPrefix(direction: Direction, port: number): string {
  return `${direction}_${port}`;
}

/** Name of the cluster in every bootstrap that points at the control plane. */
export const XDS_CLUSTER = 'chancery-xds';

/** SDS secret names, as Istio's sidecars use them: the workload's certificate and the trust bundle. */
export const SECRET_WORKLOAD = 'default';
export const SECRET_TRUST_BUNDLE = 'ROOTCA';

/**
 * SDS secrets of a credential (certificate and key; the CA that verifies clients or, originating, servers), after
 * Istio's `kubernetes://<name>` and `<name>-cacert`. The prefix keeps a credential called `default` from meaning
 * the SVID.
 */
export function credentialSecretName(credential: string): string {
  return `credential://${credential}`;
}

export function credentialCaSecretName(credential: string): string {
  return `credential://${credential}-cacert`;
}

/** The DNS cache of the dynamic forward proxy filter and clusters (ServiceEntry DYNAMIC_DNS). */
export const DFP_DNS_CACHE = 'chancery_dynamic_dns';

/** Cluster through which Envoy fetches a remote JWKS. */
export function jwksClusterName(u: { host: string; port: number }): string {
  return `jwks|${u.host}:${u.port}`;
}
