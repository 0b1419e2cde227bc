/**
 * Stage: ir. ProxyIR: everything ONE proxy needs, still Envoy-free, plain data (serialisable to YAML for golden
 * files and `chancery render --ir`). Envoy resource names are not chosen here: references are logical keys that
 * xds/names.ts turns into names.
 */
import type { Origin } from '../diag/diagnostic.js';
import type { HttpRoute, LoadBalancer, StringMatch, TrafficPolicy } from '../policy/traffic-types.js';
import type { ExtAuthzProvider, PathNormalization, Protocol } from '../policy/types.js';
import type { AuthzRuleIR } from './authz.js';

/** Which upstream a route or TCP proxy sends to. */
export type ClusterKey =
  | { direction: 'outbound'; host: string; port: number; subset?: string }
  | { direction: 'inbound'; port: number }
  /** Where Envoy fetches a remote JWKS (RequestAuthentication jwksUri). */
  | { direction: 'jwks'; host: string; port: number; tls: boolean }
  /** An OpenTelemetry collector (Telemetry tracing). */
  | { direction: 'telemetry'; host: string; port: number };

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
  /**
   * Originate mTLS with the workload's SVID, accepting only these SPIFFE ids (the destination's identities); the
   * SNI is the service host unless the DestinationRule names one.
   */
  tls?: { sans: string[]; sni?: string };
  /**
   * TLS with certificates of the user's own (DestinationRule SIMPLE / MUTUAL): files on the proxy's host, or a
   * credential (a directory under --credentials-dir) whose parts the proxy gets over SDS (see credentialsOf).
   */
  originate?: {
    /** Unused (empty) when `perRequest`. */
    sni: string;
    /**
     * A dynamic forward proxy (DYNAMIC_DNS): the SNI and the name the server's certificate must hold are each
     * request's Host (Envoy auto_sni and auto_san_validation, as Istio sets them); `verify.sans` is then empty.
     */
    perRequest?: true;
    /** Server verification: a CA (file or credential) and the names the certificate must hold; absent: insecure. */
    verify?: { sans: string[] } & ({ caFile: string } | { caCredential: string });
    client?: { certFile: string; keyFile: string } | { credential: string };
  };
  /**
   * `eds`: endpoints over EDS; `static`: inline endpoints; `dns`: Envoy resolves the host itself; `dfp`: a dynamic
   * forward proxy resolves the name each request asks for (ServiceEntry DYNAMIC_DNS, wildcard hosts).
   */
  discovery: 'eds' | 'static' | 'dns' | 'dfp';
  protocol: Protocol;
  endpoints: EndpointIR[];
  /** DestinationRule traffic policy (load balancing, circuit breaking, outlier detection). */
  policy?: Omit<TrafficPolicy, 'portLevel' | 'tls'>;
  origins: Origin[];
}

export type StringMatchIR = StringMatch;

export interface RouteMatchIR {
  /** Path match; everything (prefix "/") when absent. */
  path?: StringMatchIR;
  /** Header matches, pseudo-headers included (`:method`, `:authority`); no `match` means "present". */
  headers: { name: string; match?: StringMatchIR }[];
  query: { name: string; match?: StringMatchIR }[];
}

export interface WeightedCluster {
  cluster: ClusterKey;
  weight: number;
}

export type RouteActionIR =
  | {
      kind: 'forward';
      clusters: WeightedCluster[];
      timeoutMs?: number;
      retries?: { attempts: number; perTryTimeoutMs?: number; retryOn?: string };
      mirror?: { cluster: ClusterKey; percent: number };
      rewrite?: { prefix?: string; authority?: string };
      /** Consistent hashing (DestinationRule consistentHash) of the destination. */
      hash?: NonNullable<LoadBalancer['consistentHash']>;
    }
  /** `https`: to the same URL over https (gateway httpsRedirect), on `port` when that is not the one requested. */
  | { kind: 'redirect'; path?: string; authority?: string; code: number; https?: true; port?: number }
  | { kind: 'direct'; status: number; body?: string };

export interface RateLimitIR {
  requests: number;
  unitMs: number;
  burst: number;
  status: number;
  responseHeaders: Record<string, string>;
}

export interface RouteIR {
  /** `<namespace>/<VirtualService>/http[<i>]` or a role such as `default`, for operators. */
  name: string;
  match: RouteMatchIR;
  action: RouteActionIR;
  fault?: HttpRoute['fault'];
  headers?: HttpRoute['headers'];
  rateLimit?: RateLimitIR;
  origins: Origin[];
}

export interface VirtualHostIR {
  /** The service host, used as the virtual host name. */
  name: string;
  domains: string[];
  routes: RouteIR[];
}

/** A route table's logical name: a sidecar's egress listener port, or a gateway port (and TLS server). */
export type RouteTableKey =
  | { kind: 'outbound'; port: number }
  /** A gateway listener's plaintext servers, or (`server`) one TLS server of it. */
  | { kind: 'gateway'; address: string; port: number; server?: string };

export interface RouteTableIR {
  key: RouteTableKey;
  virtualHosts: VirtualHostIR[];
}

/**
 * TLS a gateway server terminates (Envoy DownstreamTlsContext): with a credential served over SDS, or (ISTIO_MUTUAL)
 * with the gateway's own SVID, requiring a client certificate of the mesh's trust domains.
 */
export interface ServerTlsIR {
  mode: 'SIMPLE' | 'MUTUAL' | 'OPTIONAL_MUTUAL' | 'ISTIO_MUTUAL';
  /** The credential's name (a directory under --credentials-dir); xds/names.ts names its SDS secrets. */
  credential?: string;
  minProtocolVersion?: string;
  maxProtocolVersion?: string;
  cipherSuites: string[];
  subjectAltNames: string[];
  verifyCertificateSpki: string[];
  verifyCertificateHash: string[];
}

/** Where an L4 chain sends its bytes: a tcp or tls route's (weighted) destinations. */
export interface TcpForwardIR {
  cluster: ClusterKey;
  weighted?: WeightedCluster[];
  /** `<namespace>/<VirtualService>/tcp[i]` or `.../tls[i]`. */
  route: string;
}

/** A TLS filter chain chosen by SNI (server_names), forwarding to a tls route's destinations. */
export interface SniForwardIR extends TcpForwardIR {
  serverNames: string[];
}

/**
 * One filter chain of a gateway listener: an HTTP server that terminates TLS (chosen by SNI), every plaintext HTTP
 * server of the port, or an L4 server's chain (TCP, TLS terminated then forwarded, or passed through by SNI).
 */
export interface GatewayChainIR {
  /** `namespace/gateway/servers[i]` of each server the chain serves. */
  servers: string[];
  /** SNI names the chain answers (TLS); empty: every name. */
  serverNames: string[];
  tls?: ServerTlsIR;
  /** HTTP chains: the route table. */
  rds?: RouteTableKey;
  /** L4 chains: a tcp_proxy to these clusters. */
  tcp?: TcpForwardIR;
}

export interface ListenerIR {
  direction: 'inbound' | 'outbound' | 'gateway';
  address: string;
  port: number;
  protocol: Protocol;
  /** HTTP listeners: inline virtual hosts (inbound) or an RDS route table (outbound). */
  http?: { inline?: VirtualHostIR[]; rds?: RouteTableKey; requests: RequestHandlingIR };
  /**
   * Gateway listeners: their filter chains (an HTTP connection manager with `http.requests`, or a tcp_proxy), and
   * the gateway's authorization lowered for L4 chains (present when it has some).
   */
  gateway?: { chains: GatewayChainIR[]; l4Security?: InboundSecurityIR };
  /** TCP listeners: the upstream, or weighted upstreams (VirtualService tcp route; `cluster` is the first). */
  tcp?: {
    cluster: ClusterKey;
    weighted?: WeightedCluster[];
    /** Outbound: the service and port this listener stands for, and the VirtualService tcp route that applied. */
    service?: { host: string; port: number };
    route?: string;
    /**
     * Outbound TLS listeners whose host has tls routes: a chain per SNI set (Istio's sidecar TLS filter chains),
     * in place of `cluster`; a name no chain lists gets no chain (the connection is closed).
     */
    sni?: SniForwardIR[];
  };
  /** Inbound and gateway listeners: peer authentication, JWT and authorization. */
  security?: InboundSecurityIR;
  /** HTTP listeners: access log and tracing (from Telemetry). */
  telemetry?: TelemetryIR;
  origins: Origin[];
}

/** What an HTTP connection manager does to a request before any filter or route sees it. */
export interface RequestHandlingIR {
  pathNormalization: PathNormalization;
  /** X-Forwarded-For entries (from the right) set by trusted proxies; 0: the connection's peer is the client. */
  numTrustedProxies: number;
}

export interface AuthzPolicyIR {
  /** `namespace/name` of the AuthorizationPolicy; Envoy RBAC policies are named `<name>/rules[i]`. */
  name: string;
  action: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  /** Evaluated as Envoy shadow rules and logged; decides nothing. */
  dryRun: boolean;
  /** CUSTOM: the extension provider asked to decide the requests the rules select. */
  provider?: string;
  /** Lowered for this listener (ir/authz.ts); an ALLOW rule that cannot match on TCP is left out. */
  rules: AuthzRuleIR[];
  origin: Origin;
}

export interface JwtProviderIR {
  /** `namespace/name/jwtRules[i]`. */
  name: string;
  rule: import('../policy/security-types.js').JwtRule;
}

export interface InboundSecurityIR {
  /** Mesh mTLS the listener accepts; DISABLE on a gateway listener, whose TLS is its servers' own. */
  mtls: 'STRICT' | 'PERMISSIVE' | 'DISABLE';
  trustDomain: string;
  /** Peers of these trust domains are accepted too (Mesh trustDomainAliases). */
  trustDomainAliases: string[];
  /** Mesh default when no ALLOW policy applies: DENY unless the Mesh says ALLOW. */
  defaultAction: 'DENY' | 'ALLOW';
  policies: AuthzPolicyIR[];
  /** CUSTOM policies apply: the provider Envoy's ext_authz filter asks about the requests their rules select. */
  extAuthz?: ExtAuthzIR;
  jwt: JwtProviderIR[];
}

export interface ExtAuthzIR {
  provider: ExtAuthzProvider;
  /** The outbound cluster of the provider's ServiceEntry (mTLS when its endpoints are mesh workloads). */
  cluster: ClusterKey;
  /** The service host: the authority of check requests. */
  authority: string;
}

export interface TelemetryIR {
  accessLog: { kind: 'stdout' } | { kind: 'file'; path: string } | { kind: 'off' };
  tracing?: { cluster: ClusterKey; samplingPercentage: number; serviceName: string };
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
  listeners: ListenerIR[];
  routeTables: RouteTableIR[];
  clusters: ClusterIR[];
}
