/**
 * Stage: ir. ProxyIR: everything ONE proxy needs, still Envoy-free, plain data (serialisable to YAML for golden
 * files and `chancery render --ir`). Envoy resource names are not chosen here: references are logical keys that
 * xds/names.ts turns into names.
 */
import type { Origin } from '../diag/diagnostic.js';
import type { Protocol } from '../policy/types.js';

/** Which upstream a route or TCP proxy sends to. */
export type ClusterKey =
  | { direction: 'outbound'; host: string; port: number; subset?: string }
  | { direction: 'inbound'; port: number };

export interface EndpointIR {
  address: string;
  port: number;
  weight?: number;
  locality?: string;
  /** The WorkloadEntry (or ServiceEntry) it came from. */
  origin: Origin;
}

export interface ClusterIR {
  key: ClusterKey;
  /** `eds`: endpoints over EDS; `static`: inline endpoints; `dns`: Envoy resolves the host itself. */
  discovery: 'eds' | 'static' | 'dns';
  protocol: Protocol;
  endpoints: EndpointIR[];
  origins: Origin[];
}

export interface RouteIR {
  /** Only prefix "/" for now: the whole virtual host goes to one cluster. */
  prefix: string;
  cluster: ClusterKey;
  origins: Origin[];
}

export interface VirtualHostIR {
  /** The service host, used as the virtual host name. */
  name: string;
  domains: string[];
  routes: RouteIR[];
}

export interface RouteTableIR {
  /** Logical name: the outbound listener port. */
  port: number;
  virtualHosts: VirtualHostIR[];
}

export interface ListenerIR {
  direction: 'inbound' | 'outbound';
  address: string;
  port: number;
  protocol: Protocol;
  /** HTTP listeners: inline virtual hosts (inbound) or an RDS route table (outbound). */
  http?: { inline?: VirtualHostIR[]; rds?: number };
  /** TCP listeners: the single upstream. */
  tcp?: { cluster: ClusterKey };
  origins: Origin[];
}

export interface ProxyIR {
  node: {
    id: string;
    namespace: string;
    name: string;
    address: string;
    serviceAccount: string;
    identity: string;
  };
  revision: string;
  listeners: ListenerIR[];
  routeTables: RouteTableIR[];
  clusters: ClusterIR[];
}
