/**
 * Stage: decode. Typed traffic policies: VirtualService, DestinationRule (networking.istio.io) and Chancery's
 * RateLimitPolicy. Envoy-free.
 */
import type { Origin } from '../diag/diagnostic.js';

/** Istio's StringMatch: exactly one of exact, prefix, regex (RE2). */
export type StringMatch = { exact: string } | { prefix: string } | { regex: string };

export interface HttpMatch {
  uri?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers: { name: string; match?: StringMatch }[];
  queryParams: { name: string; match?: StringMatch }[];
  port?: number;
  sourceLabels?: Record<string, string>;
  /** Restricts this match to these gateways (`mesh`: the sidecars), overriding the VirtualService's list. */
  gateways?: GatewayName[];
  at: Origin;
}

/** A gateway as a VirtualService names it: `mesh`, `namespace/name`, or `name` in the VirtualService's namespace. */
export interface GatewayName {
  value: string;
  at: Origin;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: number;
  weight: number;
  at: Origin;
}

export interface HeaderOps {
  set: Record<string, string>;
  add: Record<string, string>;
  remove: string[];
}

export interface HttpRoute {
  name?: string;
  match: HttpMatch[];
  route: Destination[];
  redirect?: { uri?: string; authority?: string; code: number };
  directResponse?: { status: number; body?: string };
  rewrite?: { uri?: string; authority?: string };
  timeoutMs?: number;
  retries?: { attempts: number; perTryTimeoutMs?: number; retryOn?: string };
  fault?: { delay?: { ms: number; percent: number }; abort?: { status: number; percent: number } };
  mirror?: { host: string; subset?: string; port?: number; percent: number; at: Origin };
  headers: { request: HeaderOps; response: HeaderOps };
  at: Origin;
}

export interface TcpMatch {
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  /** Restricts this match to these gateways (`mesh`: the sidecars), overriding the VirtualService's list. */
  gateways?: GatewayName[];
  at: Origin;
}

/** Istio's TLSMatchAttributes: the SNI of the client's TLS, and where the match applies. */
export interface TlsMatch {
  sniHosts: { value: string; at: Origin }[];
  port?: number;
  /** The calling workload's labels and namespace (sidecars only; rejected where the match applies at a gateway). */
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  gateways?: GatewayName[];
  at: Origin;
}

/** Istio's TLSRoute: TLS routed by SNI without terminating it (passthrough), to weighted destinations. */
export interface TlsRoute {
  /** Any of them. */
  match: TlsMatch[];
  route: Destination[];
  at: Origin;
}

export interface TcpRoute {
  /** Any of them (all routes when empty). */
  match: TcpMatch[];
  route: Destination[];
  at: Origin;
}

export interface VirtualServiceSpec {
  hosts: { value: string; at: Origin }[];
  /** Where the routes apply: `mesh` (every sidecar; the default) and/or gateways. */
  gateways: GatewayName[];
  http: HttpRoute[];
  tcp: TcpRoute[];
  tls: TlsRoute[];
}

export interface LoadBalancer {
  simple?: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM';
  consistentHash?: { header?: string; cookie?: { name: string; ttlMs: number }; sourceIp?: boolean };
}

export interface ConnectionPool {
  maxConnections?: number;
  connectTimeoutMs?: number;
  http1MaxPendingRequests?: number;
  http2MaxRequests?: number;
  maxRequestsPerConnection?: number;
  maxRetries?: number;
  idleTimeoutMs?: number;
}

export interface OutlierDetection {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  intervalMs?: number;
  baseEjectionTimeMs?: number;
  maxEjectionPercent?: number;
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancer;
  connectionPool?: ConnectionPool;
  outlierDetection?: OutlierDetection;
  tls?: ClientTls;
  portLevel: { port: number; policy: Omit<TrafficPolicy, 'portLevel'> }[];
}

export interface Subset {
  name: string;
  labels: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
  at: Origin;
}

/**
 * DestinationRule SIMPLE / MUTUAL, as Istio's ClientTLSSettings: files on the proxy's host (Envoy reads them), or a
 * credential (`credentialName`) whose files the control plane serves over SDS.
 */
export interface TlsOrigination {
  mode: 'SIMPLE' | 'MUTUAL';
  sni?: string;
  subjectAltNames: string[];
  /** `credentialName`: MUTUAL's client certificate and key, and (unless insecureSkipVerify) the CA, `ca.crt`. */
  credential?: { name: string; at: Origin; path: string };
  caCertificates?: string;
  clientCertificate?: string;
  privateKey?: string;
  insecureSkipVerify: boolean;
}

/** ISTIO_MUTUAL with an `sni` of its own (e.g. the external host, for an egress gateway's SNI-chosen server). */
export interface MeshMutualTls {
  mode: 'ISTIO_MUTUAL';
  sni: string;
}

/** DestinationRule `trafficPolicy.tls`: the mesh's own mTLS, none, or TLS with certificates of your own. */
export type ClientTls = 'ISTIO_MUTUAL' | 'DISABLE' | MeshMutualTls | TlsOrigination;

export interface DestinationRuleSpec {
  host: { value: string; at: Origin };
  trafficPolicy?: TrafficPolicy;
  subsets: Subset[];
}

export interface RateLimit {
  /** Only requests matching this are counted (all requests when absent). */
  match?: { path?: StringMatch; method?: string };
  /** Token bucket: `requests` per `unitMs`, bursting up to `burst`. */
  requests: number;
  unitMs: number;
  burst: number;
  status: number;
  responseHeaders: Record<string, string>;
  at: Origin;
}

export interface RateLimitPolicySpec {
  selector?: Record<string, string>;
  limits: RateLimit[];
}
