/**
 * Stage: decode. The typed `networking.istio.io` Gateway: servers (port, hosts, TLS, bind) of the standalone Envoys
 * its selector picks. Envoy-free. TLS keys and certificates are never here: `credentialName` names a directory
 * outside the policy repository (see credentials/).
 */
import type { Origin } from '../diag/diagnostic.js';

/**
 * Protocols of gateway servers: HTTPS is HTTP over the server's TLS (or, PASSTHROUGH, TLS routed by SNI); TCP is
 * opaque bytes routed by tcp routes; TLS is passed through by SNI (tls routes) or terminated then routed as TCP.
 */
export const GATEWAY_PROTOCOLS = ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'TCP', 'TLS'] as const;
export type GatewayProtocol = (typeof GATEWAY_PROTOCOLS)[number];

/** Istio's TLS protocol versions (ServerTLSSettings.TLSProtocol). */
export const TLS_VERSIONS = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];

/** `namespace/dnsName` of a server's hosts: `*` any namespace, `.` the Gateway's own (resolved when decoded). */
export interface GatewayHost {
  namespace: string;
  host: string;
  at: Origin;
}

/** TLS a server terminates: with a credential from outside Git, or (ISTIO_MUTUAL) the mesh's own mTLS. */
export type ServerTls = CredentialTls | MeshTls;

/** ISTIO_MUTUAL: the gateway's own SVID, and a client certificate of the mesh (its trust domains) is required. */
export interface MeshTls {
  mode: 'ISTIO_MUTUAL';
  minProtocolVersion?: TlsVersion;
  maxProtocolVersion?: TlsVersion;
  cipherSuites: string[];
  at: Origin;
}

/** TLS a server terminates with a credential from outside Git. */
export interface CredentialTls {
  /** SIMPLE: server certificate only; MUTUAL: a client certificate is required; OPTIONAL_MUTUAL: verified if sent. */
  mode: 'SIMPLE' | 'MUTUAL' | 'OPTIONAL_MUTUAL';
  /** `<credentials-dir>/<credentialName>/{tls.crt,tls.key[,ca.crt]}`. */
  credentialName: string;
  minProtocolVersion?: TlsVersion;
  maxProtocolVersion?: TlsVersion;
  cipherSuites: string[];
  /** Client certificates must carry one of these SANs (MUTUAL, OPTIONAL_MUTUAL). */
  subjectAltNames: string[];
  /** Base64 SHA-256 of a client certificate's SubjectPublicKeyInfo (Envoy verify_certificate_spki). */
  verifyCertificateSpki: string[];
  /** Hex SHA-256 of a client certificate (Envoy verify_certificate_hash). */
  verifyCertificateHash: string[];
  at: Origin;
  /** Where credentialName is written, for diagnostics about the credential's files. */
  credentialAt: Origin;
}

export interface GatewayServer {
  port: { number: number; name: string; protocol: GatewayProtocol };
  hosts: GatewayHost[];
  /** Servers that terminate TLS; absent for plaintext and passthrough ones. */
  tls?: ServerTls;
  /** TLS PASSTHROUGH (HTTPS or TLS servers): the client's TLS is routed by SNI with tls routes, never terminated. */
  passthrough?: true;
  /** Plaintext HTTP servers: answer every request with a 301 to https (Envoy require_tls ALL). */
  httpsRedirect: boolean;
  /** Listen on this address instead of the gateway workload's. */
  bind?: string;
  name?: string;
  at: Origin;
}

export interface GatewaySpec {
  /** Labels of the gateway workloads, in any namespace (Istio's default, PILOT_SCOPE_GATEWAY_TO_NAMESPACE off). */
  selector: Record<string, string>;
  servers: GatewayServer[];
}
