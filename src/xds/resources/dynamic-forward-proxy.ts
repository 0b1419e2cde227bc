/**
 * Stage: xds. Envoy's dynamic forward proxy for ServiceEntry DYNAMIC_DNS (wildcard hosts): the HTTP filter resolves
 * the Host each request names into a DNS cache that the cluster then connects from. The filter and every such
 * cluster share one cache, so its configuration is written once, here.
 */
import { DFP_DNS_CACHE } from '../names.js';
import { anyType } from '../type-urls.js';

/** The one DNS cache (Envoy requires every user of a cache name to configure it identically). */
export function dnsCacheConfig(): object {
  return { name: DFP_DNS_CACHE, dns_lookup_family: 'V4_ONLY' };
}

/**
 * Cluster fields of a dynamic forward proxy cluster (cluster_type, and the load balancing it provides itself).
 * Envoy refuses TLS on such a cluster unless the SNI and the server's name come from each request (auto_sni,
 * auto_san_validation), or `allow_insecure_cluster_options` says otherwise: with insecureSkipVerify nothing is
 * verified, so it must.
 */
export function dynamicForwardProxyCluster(insecure: boolean): Record<string, unknown> {
  return {
    lb_policy: 'CLUSTER_PROVIDED',
    cluster_type: {
      name: 'envoy.clusters.dynamic_forward_proxy',
      typed_config: {
        '@type': anyType('envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig'),
        dns_cache_config: dnsCacheConfig(),
        ...(insecure ? { allow_insecure_cluster_options: true } : {}),
      },
    },
  };
}

/** upstream_http_protocol_options of a cluster originating TLS per request: SNI and SAN check from the Host. */
export function perRequestTlsOptions(verify: boolean): object {
  return { auto_sni: true, ...(verify ? { auto_san_validation: true } : {}) };
}
