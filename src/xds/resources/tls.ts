/**
 * Stage: xds. TLS transport sockets for mesh mTLS. Both sides take their certificate (`default`) and the trust
 * bundle (`ROOTCA`) over SDS on the ADS stream, so rotation never touches listeners or clusters. The server accepts
 * any SPIFFE id of the trust domain (authorization decides who may do what); the client accepts only the identities
 * its destination service runs as.
 */
import type { ClusterIR, ServerTlsIR } from '../../ir/types.js';
import { SYSTEM_CA_BUNDLE } from '../../policy/types.js';
import { credentialCaSecretName, credentialSecretName, SECRET_TRUST_BUNDLE, SECRET_WORKLOAD } from '../names.js';
import { anyType } from '../type-urls.js';
import { ADS_SOURCE } from './common.js';

const sds = (name: string) => ({ name, sds_config: ADS_SOURCE });

function commonTlsContext(sanMatchers: object[], alpn: string[]): object {
  return {
    tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
    tls_certificate_sds_secret_configs: [sds(SECRET_WORKLOAD)],
    combined_validation_context: {
      default_validation_context: { match_typed_subject_alt_names: sanMatchers },
      validation_context_sds_secret_config: sds(SECRET_TRUST_BUNDLE),
    },
    ...(alpn.length > 0 ? { alpn_protocols: alpn } : {}),
  };
}

/** Inbound: require a client certificate from the trust domain or one of its aliases. */
export function downstreamMtls(trustDomains: readonly string[], http: boolean): object {
  const sans = trustDomains.map((td) => ({ san_type: 'URI', matcher: { prefix: `spiffe://${td}/` } }));
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': anyType('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext'),
      require_client_certificate: true,
      common_tls_context: commonTlsContext(sans, http ? ['h2', 'http/1.1'] : []),
    },
  };
}

/** Outbound: present the workload's SVID; accept only the destination's SPIFFE ids. */
export function upstreamMtls(sans: readonly string[], sni: string): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': anyType('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext'),
      sni,
      // SPIFFE ids are URI SANs; a ServiceEntry's other subjectAltNames may be any type (Istio matches any).
      common_tls_context: commonTlsContext(
        sans.flatMap((s) =>
          (s.startsWith('spiffe://') ? ['URI'] : ['DNS', 'URI']).map((t) => ({ san_type: t, matcher: { exact: s } })),
        ),
        [],
      ),
    },
  };
}

/** Each name of a gateway's subjectAltNames matches a client SAN of any type, as Istio's match_subject_alt_names. */
const SAN_TYPES = ['DNS', 'URI', 'EMAIL', 'IP_ADDRESS'];

/**
 * A gateway server's TLS: its credential's certificate over SDS; for MUTUAL (and OPTIONAL_MUTUAL, where a client
 * certificate is verified if sent) the credential's CA verifies clients, optionally narrowed by SAN, SPKI or hash.
 * ISTIO_MUTUAL: the gateway's own SVID, and a client certificate of the mesh's trust domains is required (Istio's
 * gateway does the same with its workload certificate). ALPN h2/http1.1 only for HTTP chains.
 */
export function downstreamServerTls(t: ServerTlsIR, http: boolean, trustDomains: readonly string[]): object {
  const params = {
    ...(t.minProtocolVersion ? { tls_minimum_protocol_version: t.minProtocolVersion } : {}),
    ...(t.maxProtocolVersion ? { tls_maximum_protocol_version: t.maxProtocolVersion } : {}),
    ...(t.cipherSuites.length > 0 ? { cipher_suites: t.cipherSuites } : {}),
  };
  const alpn = http ? { alpn_protocols: ['h2', 'http/1.1'] } : {};
  const context = (common: object, requireClient: boolean) => ({
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': anyType('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext'),
      require_client_certificate: requireClient,
      common_tls_context: { tls_params: params, ...common, ...alpn },
    },
  });
  if (t.credential === undefined) {
    const sans = trustDomains.map((td) => ({ san_type: 'URI', matcher: { prefix: `spiffe://${td}/` } }));
    const validation = {
      default_validation_context: { match_typed_subject_alt_names: sans },
      validation_context_sds_secret_config: sds(SECRET_TRUST_BUNDLE),
    };
    return context(
      { tls_certificate_sds_secret_configs: [sds(SECRET_WORKLOAD)], combined_validation_context: validation },
      true,
    );
  }
  const verifies = t.mode !== 'SIMPLE';
  const sans = t.subjectAltNames.flatMap((n) => SAN_TYPES.map((san_type) => ({ san_type, matcher: { exact: n } })));
  const checks = {
    ...(t.subjectAltNames.length > 0 ? { match_typed_subject_alt_names: sans } : {}),
    ...(t.verifyCertificateSpki.length > 0 ? { verify_certificate_spki: t.verifyCertificateSpki } : {}),
    ...(t.verifyCertificateHash.length > 0 ? { verify_certificate_hash: t.verifyCertificateHash } : {}),
  };
  const validation = {
    default_validation_context: checks,
    validation_context_sds_secret_config: sds(credentialCaSecretName(t.credential)),
  };
  const common = {
    tls_certificate_sds_secret_configs: [sds(credentialSecretName(t.credential))],
    ...(verifies ? { combined_validation_context: validation } : {}),
  };
  return context(common, t.mode === 'MUTUAL');
}

export const TLS_INSPECTOR = {
  name: 'envoy.filters.listener.tls_inspector',
  typed_config: { '@type': anyType('envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector') },
};

/** TLS to a server outside the mesh (a JWKS endpoint), verified against the system's CA bundle. */
export function upstreamTlsToPublicServer(sni: string): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': anyType('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext'),
      sni,
      common_tls_context: {
        validation_context: {
          trusted_ca: { filename: SYSTEM_CA_BUNDLE },
          match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: sni } }],
        },
      },
    },
  };
}

export { SYSTEM_CA_BUNDLE };

/**
 * TLS origination with the user's own files or a credential's SDS secrets (DestinationRule SIMPLE / MUTUAL). A
 * credential's parts come over SDS like a gateway's (`credential://<name>`, `credential://<name>-cacert`), so a
 * rotation on disk reaches new connections without touching the cluster.
 */
export function upstreamOriginatedTls(o: NonNullable<ClusterIR['originate']>): object {
  const names = (o.verify?.sans ?? []).flatMap((n) =>
    ['DNS', 'URI'].map((t) => ({ san_type: t, matcher: { exact: n } })),
  );
  const v = o.verify;
  const validation = !v
    ? {}
    : 'caFile' in v
      ? { validation_context: { trusted_ca: { filename: v.caFile }, match_typed_subject_alt_names: names } }
      : {
          combined_validation_context: {
            default_validation_context: { match_typed_subject_alt_names: names },
            validation_context_sds_secret_config: sds(credentialCaSecretName(v.caCredential)),
          },
        };
  const c = o.client;
  const client = !c
    ? {}
    : 'credential' in c
      ? { tls_certificate_sds_secret_configs: [sds(credentialSecretName(c.credential))] }
      : {
          tls_certificates: [{ certificate_chain: { filename: c.certFile }, private_key: { filename: c.keyFile } }],
        };
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': anyType('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext'),
      // perRequest: the SNI comes from each request (the cluster's auto_sni).
      ...(o.perRequest ? {} : { sni: o.sni }),
      common_tls_context: { ...client, ...validation },
    },
  };
}
