/**
 * Stage: xds. ClusterIR -> envoy.config.cluster.v3.Cluster (proto3 JSON), with the DestinationRule traffic policy:
 * load balancing, connection pool limits as circuit breakers, outlier detection.
 */
import type { ClusterIR } from '../../ir/types.js';
import type { ConnectionPool, LoadBalancer, OutlierDetection } from '../../policy/traffic-types.js';
import { clusterName } from '../names.js';
import { isHttpProtocol } from '../../policy/types.js';
import { anyType } from '../type-urls.js';
import { ADS_SOURCE, durationOf } from './common.js';
import { buildLoadAssignment } from './endpoint.js';
import { dynamicForwardProxyCluster, perRequestTlsOptions } from './dynamic-forward-proxy.js';
import { upstreamMtls, upstreamOriginatedTls, upstreamTlsToPublicServer } from './tls.js';

const CONNECT_TIMEOUT_MS = 5000;

function lbPolicy(lb: LoadBalancer | undefined): string {
  if (lb?.consistentHash) return 'RING_HASH';
  if (lb?.simple === 'LEAST_REQUEST') return 'LEAST_REQUEST';
  if (lb?.simple === 'RANDOM') return 'RANDOM';
  return 'ROUND_ROBIN';
}

/** connectionPool -> circuit_breakers (Envoy's defaults are 1024 each; only what the policy sets is changed). */
function circuitBreakers(p: ConnectionPool): object | undefined {
  const t: Record<string, number> = {};
  if (p.maxConnections !== undefined) t.max_connections = p.maxConnections;
  if (p.http1MaxPendingRequests !== undefined) t.max_pending_requests = p.http1MaxPendingRequests;
  if (p.http2MaxRequests !== undefined) t.max_requests = p.http2MaxRequests;
  if (p.maxRetries !== undefined) t.max_retries = p.maxRetries;
  return Object.keys(t).length > 0 ? { thresholds: [{ priority: 'DEFAULT', ...t }] } : undefined;
}

/** outlierDetection as Istio maps it: each error kind is enforced only when its threshold is set. */
function outlier(o: OutlierDetection): object {
  return {
    ...(o.consecutive5xxErrors !== undefined && o.consecutive5xxErrors > 0
      ? { consecutive_5xx: o.consecutive5xxErrors, enforcing_consecutive_5xx: 100 }
      : { enforcing_consecutive_5xx: 0 }),
    ...(o.consecutiveGatewayErrors !== undefined && o.consecutiveGatewayErrors > 0
      ? { consecutive_gateway_failure: o.consecutiveGatewayErrors, enforcing_consecutive_gateway_failure: 100 }
      : {}),
    ...(o.intervalMs !== undefined ? { interval: durationOf(o.intervalMs) } : {}),
    ...(o.baseEjectionTimeMs !== undefined ? { base_ejection_time: durationOf(o.baseEjectionTimeMs) } : {}),
    ...(o.maxEjectionPercent !== undefined ? { max_ejection_percent: o.maxEjectionPercent } : {}),
    enforcing_success_rate: 0,
  };
}

function protocolOptions(c: ClusterIR): object | undefined {
  const pool = c.policy?.connectionPool;
  const common: Record<string, unknown> = {};
  if (pool?.idleTimeoutMs !== undefined) common.idle_timeout = durationOf(pool.idleTimeoutMs);
  if (pool?.maxRequestsPerConnection) common.max_requests_per_connection = pool.maxRequestsPerConnection;
  const h2 = c.protocol === 'HTTP2' || c.protocol === 'GRPC';
  const perRequest = c.originate?.perRequest
    ? { upstream_http_protocol_options: perRequestTlsOptions(!!c.originate.verify) }
    : {};
  if (!h2 && Object.keys(common).length === 0 && !c.originate?.perRequest) return undefined;
  if (!isHttpProtocol(c.protocol)) return undefined;
  return {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': anyType('envoy.extensions.upstreams.http.v3.HttpProtocolOptions'),
      ...(Object.keys(common).length > 0 ? { common_http_protocol_options: common } : {}),
      ...perRequest,
      explicit_http_config: h2 ? { http2_protocol_options: {} } : { http_protocol_options: {} },
    },
  };
}

export function buildCluster(c: ClusterIR): object {
  const name = clusterName(c.key);
  const policy = c.policy;
  const base: Record<string, unknown> = {
    name,
    connect_timeout: durationOf(policy?.connectionPool?.connectTimeoutMs ?? CONNECT_TIMEOUT_MS),
    lb_policy: lbPolicy(policy?.loadBalancer),
  };
  // Envoy's stat tag extraction cuts a cluster name at its first dot; keep the host whole in stats and Prometheus.
  if (name.includes('.')) base.alt_stat_name = name.replace(/\./g, '_');
  if (c.discovery === 'eds') {
    base.type = 'EDS';
    base.eds_cluster_config = { eds_config: ADS_SOURCE };
  } else if (c.discovery === 'dfp') {
    Object.assign(base, dynamicForwardProxyCluster(!!c.originate && !c.originate.verify));
  } else if (c.discovery === 'dns') {
    base.type = 'STRICT_DNS';
    base.dns_lookup_family = 'V4_ONLY';
    base.load_assignment = buildLoadAssignment(name, c.endpoints);
  } else {
    base.type = 'STATIC';
    base.load_assignment = buildLoadAssignment(name, c.endpoints);
  }
  const po = protocolOptions(c);
  if (po) base.typed_extension_protocol_options = po;
  const cb = policy?.connectionPool ? circuitBreakers(policy.connectionPool) : undefined;
  if (cb) base.circuit_breakers = cb;
  if (policy?.outlierDetection) base.outlier_detection = outlier(policy.outlierDetection);
  if (c.tls) {
    const sni = c.tls.sni ?? (c.key.direction === 'outbound' ? c.key.host : name);
    base.transport_socket = upstreamMtls(c.tls.sans, sni);
  }
  if (c.originate) base.transport_socket = upstreamOriginatedTls(c.originate);
  if (c.key.direction === 'jwks' && c.key.tls) base.transport_socket = upstreamTlsToPublicServer(c.key.host);
  return base;
}
