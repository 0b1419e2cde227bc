/**
 * Stage: xds. A gateway ListenerIR -> envoy.config.listener.v3.Listener: one filter chain per TLS server, chosen by
 * SNI (server_names; none for a server of `*`) with the server's DownstreamTlsContext, or one plaintext chain for
 * every server of the port. Each chain is an http_connection_manager with the same request normalisation, filters
 * (the gateway's own RBAC and JWT) and telemetry as a sidecar's, routing by RDS to its route table.
 */
import type { ListenerIR } from '../../ir/types.js';
import type { FilterContext } from '../filters/index.js';
import { listenerName } from '../names.js';
import { socketAddress } from './common.js';
import { httpConnectionManager } from './http-connection-manager.js';
import { downstreamServerTls, TLS_INSPECTOR } from './tls.js';

export function buildGatewayListener(l: ListenerIR, ctx: FilterContext): object {
  const chains = l.gateway!.chains.map((c) => {
    const filters = [httpConnectionManager({ ...l, http: { ...l.http!, rds: c.rds } }, false, ctx)];
    if (!c.tls) return { name: c.servers.join(','), filters };
    const match = c.serverNames.length > 0 ? { filter_chain_match: { server_names: c.serverNames } } : {};
    return { name: c.servers.join(','), ...match, filters, transport_socket: downstreamServerTls(c.tls) };
  });
  const tls = l.gateway!.chains.some((c) => c.tls);
  return {
    name: listenerName(l.direction, l.address, l.port),
    address: socketAddress(l.address, l.port),
    // Istio's gateways are OUTBOUND: the request leaves the gateway towards the mesh.
    traffic_direction: 'OUTBOUND',
    ...(tls ? { listener_filters: [TLS_INSPECTOR] } : {}),
    filter_chains: chains,
  };
}
