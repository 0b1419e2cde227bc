/**
 * Stage: xds. ClusterIR -> envoy.config.cluster.v3.Cluster (proto3 JSON).
 */
import type { ClusterIR } from '../../ir/types.js';
import { isHttpProtocol } from '../../policy/types.js';
import { clusterName } from '../names.js';
import { anyType } from '../type-urls.js';
import { ADS_SOURCE } from './common.js';
import { buildLoadAssignment } from './endpoint.js';
import { upstreamMtls, upstreamTlsToPublicServer } from './tls.js';

const CONNECT_TIMEOUT = '5s';

export function buildCluster(c: ClusterIR): object {
  const name = clusterName(c.key);
  const base: Record<string, unknown> = { name, connect_timeout: CONNECT_TIMEOUT, lb_policy: 'ROUND_ROBIN' };
  // Envoy's stat tag extraction cuts a cluster name at its first dot; keep the host whole in stats and Prometheus.
  if (name.includes('.')) base.alt_stat_name = name.replace(/\./g, '_');
  if (c.discovery === 'eds') {
    base.type = 'EDS';
    base.eds_cluster_config = { eds_config: ADS_SOURCE };
  } else if (c.discovery === 'dns') {
    base.type = 'STRICT_DNS';
    base.dns_lookup_family = 'V4_ONLY';
    base.load_assignment = buildLoadAssignment(name, c.endpoints);
  } else {
    base.type = 'STATIC';
    base.load_assignment = buildLoadAssignment(name, c.endpoints);
  }
  if (c.protocol === 'HTTP2' || c.protocol === 'GRPC') {
    base.typed_extension_protocol_options = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': anyType('envoy.extensions.upstreams.http.v3.HttpProtocolOptions'),
        explicit_http_config: { http2_protocol_options: {} },
      },
    };
  } else if (!isHttpProtocol(c.protocol)) {
    // TCP: nothing protocol-specific.
  }
  if (c.tls) base.transport_socket = upstreamMtls(c.tls.sans, c.key.direction === 'outbound' ? c.key.host : name);
  if (c.key.direction === 'jwks' && c.key.tls) base.transport_socket = upstreamTlsToPublicServer(c.key.host);
  return base;
}
