/**
 * Stage: xds. The xDS resource type URLs Chancery serves, their protobuf message names, and the order in which they
 * are pushed (make before break: secrets, then clusters, endpoints, listeners, routes).
 */
export const TYPE = {
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
} as const;

export type TypeUrl = (typeof TYPE)[keyof typeof TYPE];

/** Push order: each type is sent only after the previous ones are ACKed (xds_protocol, "eventual consistency"). */
export const PUSH_ORDER: readonly TypeUrl[] = [TYPE.secret, TYPE.cluster, TYPE.endpoint, TYPE.listener, TYPE.route];

/** Types whose stale resources are removed only after everything else converged (a route may still point at them). */
export const REMOVE_LAST: ReadonlySet<TypeUrl> = new Set([TYPE.cluster, TYPE.endpoint, TYPE.secret]);

/** Envoy subscribes to these by wildcard; the others by name. */
export const WILDCARD_TYPES: ReadonlySet<TypeUrl> = new Set([TYPE.listener, TYPE.cluster]);

export const SHORT_NAME: Record<TypeUrl, string> = {
  [TYPE.secret]: 'SDS',
  [TYPE.cluster]: 'CDS',
  [TYPE.endpoint]: 'EDS',
  [TYPE.listener]: 'LDS',
  [TYPE.route]: 'RDS',
};

export function isKnownType(url: string): url is TypeUrl {
  return (PUSH_ORDER as readonly string[]).includes(url);
}

/** The protobuf message name inside a type URL. */
export function messageName(url: string): string {
  return url.slice(url.lastIndexOf('/') + 1);
}

export function anyType(messageFullName: string): string {
  return `type.googleapis.com/${messageFullName}`;
}
