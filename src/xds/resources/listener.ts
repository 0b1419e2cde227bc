/**
 * Stage: xds. ListenerIR -> envoy.config.listener.v3.Listener with an http_connection_manager (HTTP) or a
 * tcp_proxy (TCP) network filter. Inbound listeners get filter chains by mTLS mode: STRICT one TLS chain,
 * PERMISSIVE a TLS and a plaintext chain told apart by the TLS inspector, DISABLE one plaintext chain.
 */
import type { ListenerIR } from '../../ir/types.js';
import { httpFilters, type FilterContext } from '../filters/index.js';
import { networkRbacFilters } from '../filters/rbac.js';
import { clusterName, listenerName, routeTableName, statPrefix } from '../names.js';
import { anyType } from '../type-urls.js';
import { accessLog, tracing } from './access-log.js';
import { ADS_SOURCE, socketAddress } from './common.js';
import { buildVirtualHost } from './route.js';
import { downstreamMtls, TLS_INSPECTOR } from './tls.js';

function httpConnectionManager(l: ListenerIR, tls: boolean, ctx: FilterContext): object {
  const hcm: Record<string, unknown> = {
    '@type': anyType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
    stat_prefix: statPrefix(l.direction, l.port),
    codec_type: 'AUTO',
    http_filters: httpFilters(l, ctx),
    access_log: accessLog(l.telemetry?.accessLog),
  };
  const trace = tracing(l.telemetry?.tracing);
  if (trace) hcm.tracing = trace;
  if (l.direction === 'inbound') {
    // The application sees the caller's SPIFFE id in x-forwarded-client-cert; a header sent by the caller is dropped.
    hcm.forward_client_cert_details = tls ? 'SANITIZE_SET' : 'SANITIZE';
    if (tls) hcm.set_current_client_cert_details = { uri: true };
  }
  if (l.http!.rds !== undefined) {
    hcm.rds = { route_config_name: routeTableName(l.http!.rds), config_source: ADS_SOURCE };
  } else {
    hcm.route_config = { name: statPrefix(l.direction, l.port), virtual_hosts: (l.http!.inline ?? []).map(buildVirtualHost) };
  }
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: hcm };
}

function tcpProxy(l: ListenerIR): object {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: {
      '@type': anyType('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy'),
      stat_prefix: statPrefix(l.direction, l.port),
      cluster: clusterName(l.tcp!.cluster),
    },
  };
}

function filters(l: ListenerIR, tls: boolean, ctx: FilterContext): object[] {
  return l.http ? [httpConnectionManager(l, tls, ctx)] : [...networkRbacFilters(l), tcpProxy(l)];
}

export function buildListener(l: ListenerIR, ctx: FilterContext): object {
  const sec = l.security;
  const base = {
    name: listenerName(l.direction, l.address, l.port),
    address: socketAddress(l.address, l.port),
    traffic_direction: l.direction === 'inbound' ? 'INBOUND' : 'OUTBOUND',
  };
  if (!sec || sec.mtls === 'DISABLE') return { ...base, filter_chains: [{ filters: filters(l, false, ctx) }] };
  const tlsChain = { filter_chain_match: { transport_protocol: 'tls' }, filters: filters(l, true, ctx), transport_socket: downstreamMtls(sec.trustDomain, !!l.http) };
  if (sec.mtls === 'STRICT') return { ...base, listener_filters: [TLS_INSPECTOR], filter_chains: [tlsChain] };
  return {
    ...base,
    listener_filters: [TLS_INSPECTOR],
    filter_chains: [tlsChain, { filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: filters(l, false, ctx) }],
  };
}
