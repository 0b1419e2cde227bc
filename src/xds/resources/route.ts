/**
 * Stage: xds. Virtual hosts and route tables -> envoy.config.route.v3 (RouteConfiguration, VirtualHost).
 */
import type { RouteTableIR, VirtualHostIR } from '../../ir/types.js';
import { clusterName, routeTableName } from '../names.js';

export function buildVirtualHost(vh: VirtualHostIR): object {
  return {
    name: vh.name,
    domains: vh.domains,
    routes: vh.routes.map((r) => ({ match: { prefix: r.prefix }, route: { cluster: clusterName(r.cluster) } })),
  };
}

export function buildRouteConfiguration(t: RouteTableIR): object {
  return {
    name: routeTableName(t.port),
    virtual_hosts: t.virtualHosts.map(buildVirtualHost),
  };
}
