/**
 * Stage: decode. The typed policy objects, Envoy-free and free of YAML nodes. Every object keeps its Origin.
 */
import type { Origin } from '../diag/diagnostic.js';

export interface ObjectMeta {
  name: string;
  namespace: string;
  labels: Record<string, string>;
}

interface Base<K extends string, S> {
  kind: K;
  apiVersion: string;
  meta: ObjectMeta;
  /** Position of the document (its first line). */
  origin: Origin;
  /** Positions of interesting fields by path, e.g. `spec.hosts[0]`, for diagnostics in later stages. */
  at: Record<string, Origin>;
  spec: S;
}

/** HTTPS and TLS: the application's own TLS, carried opaquely like TCP (sidecars cannot route inside it). */
export type Protocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP' | 'HTTPS' | 'TLS';
/** The system's CA bundle (Debian/Ubuntu location): Envoy has no built-in CA store. */
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export const PROTOCOLS: readonly Protocol[] = ['HTTP', 'HTTP2', 'GRPC', 'TCP', 'HTTPS', 'TLS'];

export function isHttpProtocol(p: Protocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC';
}

export interface ServicePort {
  number: number;
  protocol: Protocol;
  name: string;
  targetPort?: number;
}

export interface EndpointSpec {
  address: string;
  ports: Record<string, number>;
  labels: Record<string, string>;
  serviceAccount?: string;
  locality?: string;
  weight?: number;
}

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** Istio's MeshConfig.pathNormalization levels; each includes the ones before it. */
export const PATH_NORMALIZATIONS = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const;
export type PathNormalization = (typeof PATH_NORMALIZATIONS)[number];

export interface MeshSpec {
  trustDomain: string;
  /** Other trust domains whose identities count as this mesh's (Istio's trustDomainAliases). */
  trustDomainAliases: string[];
  /** How sidecars normalise request paths before authorization and routing. */
  pathNormalization: PathNormalization;
  /** Proxies in front of a listener whose X-Forwarded-For entries are trusted (0: the connection decides). */
  numTrustedProxies: number;
  rootNamespace: string;
  mtlsMode: MtlsMode;
  authorizationDefault: 'DENY' | 'ALLOW';
  certificateTtlMs: number;
  /** Fraction of a certificate's life after which it is re-issued. */
  rotateAtFraction: number;
  debounceQuietMs: number;
  debounceMaxMs: number;
  /**
   * Named back ends (Istio's MeshConfig.extensionProviders): telemetry ones that Telemetry resources refer to, and
   * external authorizers that CUSTOM AuthorizationPolicies name.
   */
  extensionProviders: ExtensionProvider[];
  /** Instances a WorkloadGroup may have registered at once, unless its own annotation says otherwise. */
  maxInstancesPerGroup: number;
}

export type ExtensionProvider =
  | { name: string; kind: 'opentelemetry'; service: string; port: number }
  | { name: string; kind: 'file'; path: string }
  | ExtAuthzProvider;

/** Istio's EnvoyExternalAuthorizationRequestBody: the client's body sent with the check (Envoy with_request_body). */
export interface ExtAuthzRequestBody {
  maxRequestBytes: number;
  allowPartialMessage: boolean;
  /** gRPC only (raw_body instead of body); Envoy ignores it for HTTP authorizers, as in Istio. */
  packAsBytes: boolean;
}

/** What envoyExtAuthzHttp and envoyExtAuthzGrpc share (Istio's MeshConfig.ExtensionProvider). */
interface ExtAuthzCommon {
  name: string;
  /** A ServiceEntry host, optionally `<namespace>/<host>` as Istio writes it. */
  service: string;
  port: number;
  /** Envoy's check timeout; Istio's default is 600 s. */
  timeoutMs: number;
  /** Envoy failure_mode_allow: the request passes when the authorizer cannot be asked. */
  failOpen: boolean;
  /** Envoy status_on_error (403 when absent). */
  statusOnError?: number;
  includeRequestBodyInCheck?: ExtAuthzRequestBody;
  /** The provider entry and its `service` value, for diagnostics. */
  at: Origin;
  serviceAt: Origin;
}

export interface ExtAuthzHttpProvider extends ExtAuthzCommon {
  kind: 'extAuthzHttp';
  /** Prepended to the request path in the check request. */
  pathPrefix?: string;
  /** Istio's header patterns (`x`, `x*`, `*x`, case-insensitive) for each list below. */
  includeRequestHeadersInCheck: string[];
  /** Fixed headers added to the check request, sorted by name. */
  includeAdditionalHeadersInCheck: { name: string; value: string }[];
  headersToUpstreamOnAllow: string[];
  headersToDownstreamOnAllow: string[];
  headersToDownstreamOnDeny: string[];
}

export interface ExtAuthzGrpcProvider extends ExtAuthzCommon {
  kind: 'extAuthzGrpc';
}

export type ExtAuthzProvider = ExtAuthzHttpProvider | ExtAuthzGrpcProvider;

export function isExtAuthzProvider(p: ExtensionProvider): p is ExtAuthzProvider {
  return p.kind === 'extAuthzHttp' || p.kind === 'extAuthzGrpc';
}

export const MESH_DEFAULTS: MeshSpec = {
  trustDomain: 'cluster.local',
  trustDomainAliases: [],
  pathNormalization: 'DECODE_AND_MERGE_SLASHES',
  numTrustedProxies: 0,
  rootNamespace: 'istio-system',
  mtlsMode: 'STRICT',
  authorizationDefault: 'DENY',
  certificateTtlMs: 24 * 3_600_000,
  rotateAtFraction: 0.5,
  debounceQuietMs: 100,
  debounceMaxMs: 1000,
  extensionProviders: [],
  maxInstancesPerGroup: 100,
};

export interface ServiceEntrySpec {
  hosts: string[];
  ports: ServicePort[];
  location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  resolution: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'DYNAMIC_DNS';
  endpoints: EndpointSpec[];
  /** Addresses (single IPs) the application dials for the service: where its sidecar listens (explicit mode). */
  addresses: string[];
  /** Names the service's server certificates may carry (Istio's ServiceEntry subjectAltNames). */
  subjectAltNames: string[];
  workloadSelector?: Record<string, string>;
}

export interface WorkloadEntrySpec extends EndpointSpec {}

/**
 * Istio's WorkloadGroup: what every instance that registers into the group (`chancery bootstrap --group`) runs as.
 * Its WorkloadEntries are made when instances connect: address from the instance, the rest from here.
 */
export interface WorkloadGroupSpec {
  /** spec.metadata.labels over spec.template.labels (Istio's order): the labels of every instance. */
  labels: Record<string, string>;
  /** spec.metadata.annotations: carried onto every instance (shown in status), with no effect on configuration. */
  annotations: Record<string, string>;
  ports: Record<string, number>;
  serviceAccount?: string;
  locality?: string;
  weight?: number;
  /** The `chancery.dev/max-instances` annotation; unset: the Mesh's `registration.maxInstances`. */
  maxInstances?: number;
}

export interface SidecarPort {
  number: number;
  protocol: Protocol;
  name?: string;
}

export interface SidecarIngress {
  port: SidecarPort;
  bind?: string;
  /** host:port of the application, e.g. 127.0.0.1:8080. */
  defaultEndpoint: { address: string; port: number };
  at: Origin;
}

export interface SidecarEgress {
  port?: SidecarPort;
  bind?: string;
  // namespace/host patterns as in Istio: "./*", "*/*", "shop/*", "shop/backend.shop.svc".
  hosts: { namespace: string; host: string; at: Origin }[];
  at: Origin;
}

export interface SidecarSpec {
  workloadSelector?: Record<string, string>;
  ingress: SidecarIngress[];
  egress: SidecarEgress[];
}

export type MeshPolicy = Base<'Mesh', MeshSpec>;
export type ServiceEntry = Base<'ServiceEntry', ServiceEntrySpec>;
/** `registered`: made from a WorkloadGroup for an instance that connected (not a file in the repository). */
export type WorkloadEntry = Base<'WorkloadEntry', WorkloadEntrySpec> & { registered?: { group: string } };
export type WorkloadGroup = Base<'WorkloadGroup', WorkloadGroupSpec>;
export type Sidecar = Base<'Sidecar', SidecarSpec>;

export type PeerAuthentication = Base<'PeerAuthentication', import('./security-types.js').PeerAuthenticationSpec>;
export type AuthorizationPolicy = Base<'AuthorizationPolicy', import('./security-types.js').AuthorizationPolicySpec>;
export type RequestAuthentication = Base<
  'RequestAuthentication',
  import('./security-types.js').RequestAuthenticationSpec
>;

export interface TelemetrySpec {
  selector?: Record<string, string>;
  /** Access log providers by name (`envoy`: JSON on stdout, built in), or disabled. */
  accessLogging?: { providers: string[]; disabled: boolean; at: Origin };
  tracing?: { providers: string[]; randomSamplingPercentage: number; disabled: boolean; at: Origin };
}

export type Telemetry = Base<'Telemetry', TelemetrySpec>;

export type VirtualService = Base<'VirtualService', import('./traffic-types.js').VirtualServiceSpec>;
export type DestinationRule = Base<'DestinationRule', import('./traffic-types.js').DestinationRuleSpec>;
export type RateLimitPolicy = Base<'RateLimitPolicy', import('./traffic-types.js').RateLimitPolicySpec>;
export type Gateway = Base<'Gateway', import('./gateway-types.js').GatewaySpec>;

export type PolicyObject =
  | VirtualService
  | DestinationRule
  | Gateway
  | RateLimitPolicy
  | Telemetry
  | MeshPolicy
  | ServiceEntry
  | WorkloadEntry
  | WorkloadGroup
  | Sidecar
  | PeerAuthentication
  | AuthorizationPolicy
  | RequestAuthentication;
export type PolicyKind = PolicyObject['kind'];

/** `Kind namespace/name`, the way diagnostics and status name an object. */
export function objectRef(kind: string, meta: { namespace: string; name: string }): string {
  return `${kind} ${meta.namespace}/${meta.name}`;
}
