/**
 * Stage: xds. The Envoy bootstrap for one workload's sidecar: node identity, the ADS cluster pointing at the control
 * plane (HTTP/2), dynamic LDS/CDS over ADS (Delta by default), an admin listener on loopback, and a deliberate
 * initial_fetch_timeout so a proxy whose control plane is unreachable starts (and keeps retrying) instead of
 * hanging on its init manager forever.
 */
import { XDS_CLUSTER } from './names.js';
import { anyType } from './type-urls.js';

export interface BootstrapOptions {
  nodeId: string;
  /** Envoy's node.cluster: the workload's namespace. */
  cluster: string;
  metadata: Record<string, string>;
  xds: { host: string; port: number };
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
                  virtual_hosts: [{ name: 'prometheus', domains: ['*'], routes: [{ match: { path: '/stats/prometheus' }, route: { cluster: 'prometheus_stats' } }] }],
                },
                http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': anyType('envoy.extensions.filters.http.router.v3.Router') } }],
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
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: o.admin.address, port_value: o.admin.port } } } }] }],
      },
    },
  ];
}

export function buildBootstrap(o: BootstrapOptions): object {
  const isIp = /^\d{1,3}(\.\d{1,3}){3}$/.test(o.xds.host) || o.xds.host.includes(':');
  const configSource = { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: o.initialFetchTimeout };
  return {
    node: { id: o.nodeId, cluster: o.cluster, metadata: o.metadata },
    admin: { address: { socket_address: { address: o.admin.address, port_value: o.admin.port } } },
    dynamic_resources: {
      ads_config: {
        api_type: o.variant === 'delta' ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER }, initial_metadata: [{ key: 'authorization', value: `Bearer ${o.token}` }] }],
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
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: o.xds.host, port_value: o.xds.port } } } }] }],
          },
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
