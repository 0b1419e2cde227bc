/**
 * Stage: xds. The tcp_proxy network filter (envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy) to one cluster
 * or weighted clusters: sidecars' TCP listeners and gateways' L4 chains.
 */
import type { ClusterKey, WeightedCluster } from '../../ir/types.js';
import { clusterName } from '../names.js';
import { anyType } from '../type-urls.js';

export function tcpProxyFilter(t: { cluster: ClusterKey; weighted?: WeightedCluster[] }, statPrefix: string): object {
  const upstream = t.weighted
    ? { weighted_clusters: { clusters: t.weighted.map((c) => ({ name: clusterName(c.cluster), weight: c.weight })) } }
    : { cluster: clusterName(t.cluster) };
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: {
      '@type': anyType('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy'),
      stat_prefix: statPrefix,
      ...upstream,
    },
  };
}
