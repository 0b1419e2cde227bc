/**
 * Stage: xds. The Envoy bootstrap for one workload's sidecar: node identity, the ADS cluster pointing at the control
 * plane (HTTP/2), dynamic LDS/CDS over ADS (Delta by default), an admin listener on loopback, and a deliberate
 * initial_fetch_timeout so a proxy whose control plane is unreachable starts (and keeps retrying) instead of
 * hanging on its init manager forever. Several control-plane replicas are several endpoints of the ADS cluster:
 * Envoy opens its stream to one, and when that one dies it reconnects to another (outlier detection ejects a
 * replica that refuses connections, so the next attempt does not pick it again).
 */
import { XDS_CLUSTER } from './names.js';
import { anyType } from './type-urls.js';

export interface BootstrapOptions {
  nodeId: string;
  /** Envoy's node.cluster: the workload's namespace. */
  cluster: string;
  metadata: Record<string, string>;
  /** The control plane, or its replicas (one endpoint each of the ADS cluster). */
  xds: XdsServerAddress | XdsServerAddress[];
  admin: { address: string; port: number };
  variant: 'delta' | 'sotw';
  initialFetchTimeout: string;
  /** Sent as `authorization: Bearer <token>` on the ADS stream. */
  token: string;
  /**
   * TLS to the control plane: what to trust (PEM; the xDS CA, not the workload root, see ca/xds-ca.ts) and the
   * control plane's SPIFFE id. Omitted: plaintext.
   */
  tls?: { trustBundlePem: string; serverIdentity: string };
  /** Where Envoy's Prometheus stats are served (GET /stats/prometheus), proxied to the admin listener. */
  prometheus?: { address: string; port: number };
}

export interface XdsServerAddress {
  host: string;
  port: number;
}

/** A listener that exposes only /stats/prometheus of the admin interface, so the admin port stays on loopback. */
function prometheusListener(o: BootstrapOptions): object[] {
  if (!o.prometheus) return [];
  return [
    {
      name: 'prometheus',
      address: { socket_address: { address: o.prometheus.address, port_value: o.prometheus.port } },
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: {
                '@type': anyType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
                stat_prefix: 'prometheus',
                route_config: {
                  name: 'prometheus',
                  virtual_hosts: [
                    {
                      name: 'prometheus',
                      domains: ['*'],
                      routes: [{ match: { path: '/stats/prometheus' }, route: { cluster: 'prometheus_stats' } }],
                    },
                  ],
                },
                http_filters: [
                  {
                    name: 'envoy.filters.http.router',
                    typed_config: { '@type': anyType('envoy.extensions.filters.http.router.v3.Router') },
                  },
                ],
              },
            },
          ],
        },
      ],
    },
  ];
}

function prometheusCluster(o: BootstrapOptions): object[] {
  if (!o.prometheus) return [];
  return [
    {
      name: 'prometheus_stats',
      type: 'STATIC',
      connect_timeout: '1s',
      load_assignment: {
        cluster_name: 'prometheus_stats',
        endpoints: [
          {
            lb_endpoints: [
              { endpoint: { address: { socket_address: { address: o.admin.address, port_value: o.admin.port } } } },
            ],
          },
        ],
      },
    },
  ];
}

/**
 * With replicas: a replica that refuses or drops one connection is ejected at once (local-origin failures, split
 * from the rest), so Envoy's next ADS stream goes to a live one; every replica may be ejected (when all are, Envoy's
 * panic threshold tries them all again).
 */
const REPLICA_EJECTION = {
  split_external_local_origin_errors: true,
  consecutive_local_origin_failure: 1,
  enforcing_consecutive_local_origin_failure: 100,
  interval: '1s',
  base_ejection_time: '10s',
  max_ejection_percent: 100,
};

export function buildBootstrap(o: BootstrapOptions): object {
  const servers = Array.isArray(o.xds) ? o.xds : [o.xds];
  const isIp = servers.every((x) => /^\d{1,3}(\.\d{1,3}){3}$/.test(x.host) || x.host.includes(':'));
  const endpoint = (x: XdsServerAddress) => ({
    endpoint: { address: { socket_address: { address: x.host, port_value: x.port } } },
  });
  const configSource = { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: o.initialFetchTimeout };
  return {
    node: { id: o.nodeId, cluster: o.cluster, metadata: o.metadata },
    admin: { address: { socket_address: { address: o.admin.address, port_value: o.admin.port } } },
    dynamic_resources: {
      ads_config: {
        api_type: o.variant === 'delta' ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [
          {
            envoy_grpc: { cluster_name: XDS_CLUSTER },
            initial_metadata: [{ key: 'authorization', value: `Bearer ${o.token}` }],
          },
        ],
        set_node_on_first_message_only: true,
      },
      lds_config: configSource,
      cds_config: configSource,
    },
    static_resources: {
      listeners: prometheusListener(o),
      clusters: [
        ...prometheusCluster(o),
        {
          name: XDS_CLUSTER,
          type: isIp ? 'STATIC' : 'STRICT_DNS',
          connect_timeout: '1s',
          ...(o.tls
            ? {
                transport_socket: {
                  name: 'envoy.transport_sockets.tls',
                  typed_config: {
                    '@type': anyType('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext'),
                    common_tls_context: {
                      alpn_protocols: ['h2'],
                      validation_context: {
                        trusted_ca: { inline_string: o.tls.trustBundlePem },
                        match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: o.tls.serverIdentity } }],
                      },
                    },
                  },
                },
              }
            : {}),
          load_assignment: {
            cluster_name: XDS_CLUSTER,
            endpoints: [{ lb_endpoints: servers.map(endpoint) }],
          },
          ...(servers.length > 1 ? { outlier_detection: REPLICA_EJECTION } : {}),
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': anyType('envoy.extensions.upstreams.http.v3.HttpProtocolOptions'),
              explicit_http_config: {
                http2_protocol_options: {
                  // Detect a dead control plane connection quickly and reconnect.
                  connection_keepalive: { interval: '30s', timeout: '5s' },
                },
              },
            },
          },
        },
      ],
    },
  };
}
