/**
 * Stage: xds. ListenerIR -> envoy.config.listener.v3.Listener with an http_connection_manager (HTTP) or a
 * tcp_proxy (TCP) network filter; an outbound TLS listener with tls routes gets a chain per SNI set. Inbound
 * listeners get filter chains by mTLS mode: STRICT one TLS chain, PERMISSIVE a TLS and a plaintext chain told apart
 * by the TLS inspector, DISABLE one plaintext chain. Gateway listeners are built by gateway-listener.ts.
 */
import type { ListenerIR } from '../../ir/types.js';
import type { FilterContext } from '../filters/index.js';
import { networkExtAuthzFilters } from '../filters/ext-authz.js';
import { networkRbacFilters } from '../filters/rbac.js';
import { listenerName, statPrefix } from '../names.js';
import { socketAddress } from './common.js';
import { buildGatewayListener } from './gateway-listener.js';
import { httpConnectionManager } from './http-connection-manager.js';
import { tcpProxyFilter } from './tcp-proxy.js';
import { downstreamMtls, TLS_INSPECTOR } from './tls.js';

function filters(l: ListenerIR, tls: boolean, ctx: FilterContext): object[] {
  // TCP: CUSTOM (network ext_authz) first, then DENY / ALLOW, as on HTTP listeners.
  if (l.http) return [httpConnectionManager(l, tls, ctx)];
  return [
    ...networkExtAuthzFilters(l),
    ...networkRbacFilters(l),
    tcpProxyFilter(l.tcp!, statPrefix(l.direction, l.port)),
  ];
}

export function buildListener(l: ListenerIR, ctx: FilterContext): object {
  if (l.gateway) return buildGatewayListener(l, ctx);
  const sec = l.security;
  const base = {
    name: listenerName(l.direction, l.address, l.port),
    address: socketAddress(l.address, l.port),
    traffic_direction: l.direction === 'inbound' ? 'INBOUND' : 'OUTBOUND',
  };
  if (l.tcp?.sni) {
    // A TLS egress listener routed by SNI (tls routes): the inspector reads it, each chain forwards its names.
    const chains = l.tcp.sni.map((c) => ({
      name: c.route,
      filter_chain_match: { server_names: c.serverNames },
      filters: [tcpProxyFilter(c, statPrefix(l.direction, l.port))],
    }));
    return { ...base, listener_filters: [TLS_INSPECTOR], filter_chains: chains };
  }
  if (!sec || sec.mtls === 'DISABLE') return { ...base, filter_chains: [{ filters: filters(l, false, ctx) }] };
  const tlsChain = {
    filter_chain_match: { transport_protocol: 'tls' },
    filters: filters(l, true, ctx),
    transport_socket: downstreamMtls([sec.trustDomain, ...sec.trustDomainAliases], !!l.http),
  };
  if (sec.mtls === 'STRICT') return { ...base, listener_filters: [TLS_INSPECTOR], filter_chains: [tlsChain] };
  return {
    ...base,
    listener_filters: [TLS_INSPECTOR],
    filter_chains: [
      tlsChain,
      { filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: filters(l, false, ctx) },
    ],
  };
}
