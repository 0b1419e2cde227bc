/**
 * Stage: xds. A gateway ListenerIR -> envoy.config.listener.v3.Listener: one filter chain per TLS server, chosen by
 * SNI (server_names; none for a server of `*`) with the server's DownstreamTlsContext, or one plaintext chain for
 * every server of the port. An HTTP chain is an http_connection_manager with the same request normalisation,
 * filters (the gateway's own RBAC and JWT) and telemetry as a sidecar's, routing by RDS to its route table; an L4
 * chain (TCP, TLS terminated, or passed through by SNI without a transport socket) is the gateway's network
 * authorization then a tcp_proxy.
 */
import type { GatewayChainIR, ListenerIR } from '../../ir/types.js';
import { networkExtAuthzFilters } from '../filters/ext-authz.js';
import type { FilterContext } from '../filters/index.js';
import { networkRbacFilters } from '../filters/rbac.js';
import { listenerName, statPrefix } from '../names.js';
import { socketAddress } from './common.js';
import { httpConnectionManager } from './http-connection-manager.js';
import { tcpProxyFilter } from './tcp-proxy.js';
import { downstreamServerTls, TLS_INSPECTOR } from './tls.js';

function chainFilters(l: ListenerIR, c: GatewayChainIR, ctx: FilterContext): object[] {
  if (!c.tcp) return [httpConnectionManager({ ...l, http: { ...l.http!, rds: c.rds! } }, false, ctx)];
  const { http: _http, ...rest } = l;
  const l4: ListenerIR = { ...rest, ...(l.gateway!.l4Security ? { security: l.gateway!.l4Security } : {}) };
  return [
    ...networkExtAuthzFilters(l4),
    ...networkRbacFilters(l4),
    tcpProxyFilter(c.tcp, statPrefix(l.direction, l.port)),
  ];
}

export function buildGatewayListener(l: ListenerIR, ctx: FilterContext): object {
  const trustDomains = l.security ? [l.security.trustDomain, ...l.security.trustDomainAliases] : [];
  const chains = l.gateway!.chains.map((c) => {
    const filters = chainFilters(l, c, ctx);
    const match = c.serverNames.length > 0 ? { filter_chain_match: { server_names: c.serverNames } } : {};
    const socket = c.tls ? { transport_socket: downstreamServerTls(c.tls, !c.tcp, trustDomains) } : {};
    return { name: c.servers.join(','), ...match, filters, ...socket };
  });
  // TLS on the wire (terminated or passed through): the inspector reads the SNI that chooses the chain.
  const tls = l.gateway!.chains.some((c) => c.tls || c.serverNames.length > 0);
  return {
    name: listenerName(l.direction, l.address, l.port),
    address: socketAddress(l.address, l.port),
    // Istio's gateways are OUTBOUND: the request leaves the gateway towards the mesh.
    traffic_direction: 'OUTBOUND',
    ...(tls ? { listener_filters: [TLS_INSPECTOR] } : {}),
    filter_chains: chains,
  };
}
