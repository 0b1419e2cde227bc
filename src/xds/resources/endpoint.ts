/**
 * Stage: xds. Endpoints -> envoy.config.endpoint.v3.ClusterLoadAssignment, grouped by locality
 * (`region/zone/subzone`, as in WorkloadEntry.locality).
 */
import type { EndpointIR } from '../../ir/types.js';
import { socketAddress } from './common.js';

export function buildLoadAssignment(clusterName: string, endpoints: readonly EndpointIR[]): object {
  const byLocality = new Map<string, EndpointIR[]>();
  for (const e of endpoints) {
    const k = e.locality ?? '';
    byLocality.set(k, [...(byLocality.get(k) ?? []), e]);
  }
  const groups = [...byLocality.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    cluster_name: clusterName,
    endpoints: groups.map(([locality, eps]) => {
      const [region, zone, sub_zone] = locality.split('/');
      return {
        ...(locality ? { locality: { region, ...(zone ? { zone } : {}), ...(sub_zone ? { sub_zone } : {}) } } : {}),
        lb_endpoints: eps.map((e) => ({
          endpoint: { address: socketAddress(e.address, e.port) },
          ...(e.weight !== undefined ? { load_balancing_weight: e.weight } : {}),
        })),
      };
    }),
  };
}
