/**
 * Stage: xds. The ONE place where Envoy resource names are built. Cluster names follow Istio's
 * `direction|port|subset|host` form so that Envoy stats and logs read the same as in an Istio mesh.
 */
import type { ClusterKey } from '../ir/types.js';

export function clusterName(k: ClusterKey): string {
  if (k.direction === 'inbound') return `inbound|${k.port}||`;
  if (k.direction === 'jwks') return jwksClusterName(k);
  if (k.direction === 'telemetry') return `telemetry|${k.host}:${k.port}`;
  return `outbound|${k.port}|${k.subset ?? ''}|${k.host}`;
}

export function listenerName(direction: 'inbound' | 'outbound', address: string, port: number): string {
  return `${direction}|${address}:${port}`;
}

export function routeTableName(port: number): string {
  return `outbound|${port}`;
}

export function statPrefix(direction: 'inbound' | 'outbound', port: number): string {
  return `${direction}_${port}`;
}

/** Name of the cluster in every bootstrap that points at the control plane. */
export const XDS_CLUSTER = 'chancery-xds';

/** SDS secret names, as Istio's sidecars use them: the workload's certificate and the trust bundle. */
export const SECRET_WORKLOAD = 'default';
export const SECRET_TRUST_BUNDLE = 'ROOTCA';

/** Cluster through which Envoy fetches a remote JWKS. */
export function jwksClusterName(u: { host: string; port: number }): string {
  return `jwks|${u.host}:${u.port}`;
}
