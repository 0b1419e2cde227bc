/**
 * Stage: xds. The ONE place where Envoy resource names are built. Cluster names follow Istio's
 * `direction|port|subset|host` form so that Envoy stats and logs read the same as in an Istio mesh.
 */
import type { ClusterKey } from '../ir/types.js';

export function clusterName(k: ClusterKey): string {
  return k.direction === 'inbound' ? `inbound|${k.port}||` : `outbound|${k.port}|${k.subset ?? ''}|${k.host}`;
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
