/**
 * Stage: xds. TLS transport sockets for mesh mTLS. Both sides take their certificate (`default`) and the trust
 * bundle (`ROOTCA`) over SDS on the ADS stream, so rotation never touches listeners or clusters. The server accepts
 * any SPIFFE id of the trust domain (authorization decides who may do what); the client accepts only the identities
 * its destination service runs as.
 */
import { SECRET_TRUST_BUNDLE, SECRET_WORKLOAD } from '../names.js';
import { SYSTEM_CA_BUNDLE } from '../../policy/types.js';
import type { ClusterIR } from '../../ir/types.js';
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
      common_tls_context: commonTlsContext(
        sans.map((s) => ({ san_type: 'URI', matcher: { exact: s } })),
        [],
      ),
    },
  };
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
      common_tls_context: { validation_context: { trusted_ca: { filename: SYSTEM_CA_BUNDLE }, match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: sni } }] } },
    },
  };
}

export { SYSTEM_CA_BUNDLE };

/** TLS origination with the user's own files (DestinationRule SIMPLE / MUTUAL). */
export function upstreamOriginatedTls(o: NonNullable<ClusterIR['originate']>): object {
  const names = (o.verify?.sans ?? []).flatMap((n) => ['DNS', 'URI'].map((t) => ({ san_type: t, matcher: { exact: n } })));
  const validation = o.verify
    ? { validation_context: { trusted_ca: { filename: o.verify.caFile }, match_typed_subject_alt_names: names } }
    : {};
  const client = o.client
    ? { tls_certificates: [{ certificate_chain: { filename: o.client.certFile }, private_key: { filename: o.client.keyFile } }] }
    : {};
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': anyType('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext'),
      sni: o.sni,
      common_tls_context: { ...client, ...validation },
    },
  };
}
