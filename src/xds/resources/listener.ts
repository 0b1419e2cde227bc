/**
 * Stage: xds. ListenerIR -> envoy.config.listener.v3.Listener with an http_connection_manager (HTTP) or a
 * tcp_proxy (TCP) network filter.
 */
import type { ListenerIR } from '../../ir/types.js';
import { httpFilters } from '../filters/index.js';
import { clusterName, listenerName, routeTableName, statPrefix } from '../names.js';
import { anyType } from '../type-urls.js';
import { ADS_SOURCE, socketAddress } from './common.js';
import { buildVirtualHost } from './route.js';

export function buildListener(l: ListenerIR): object {
  const prefix = statPrefix(l.direction, l.port);
  let filter: object;
  if (l.http) {
    const hcm: Record<string, unknown> = {
      '@type': anyType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
      stat_prefix: prefix,
      codec_type: 'AUTO',
      http_filters: httpFilters(l),
    };
    if (l.http.rds !== undefined) {
      hcm.rds = { route_config_name: routeTableName(l.http.rds), config_source: ADS_SOURCE };
    } else {
      hcm.route_config = { name: prefix, virtual_hosts: (l.http.inline ?? []).map(buildVirtualHost) };
    }
    filter = { name: 'envoy.filters.network.http_connection_manager', typed_config: hcm };
  } else {
    filter = {
      name: 'envoy.filters.network.tcp_proxy',
      typed_config: {
        '@type': anyType('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy'),
        stat_prefix: prefix,
        cluster: clusterName(l.tcp!.cluster),
      },
    };
  }
  return {
    name: listenerName(l.direction, l.address, l.port),
    address: socketAddress(l.address, l.port),
    traffic_direction: l.direction === 'inbound' ? 'INBOUND' : 'OUTBOUND',
    filter_chains: [{ filters: [filter] }],
  };
}
