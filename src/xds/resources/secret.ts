/**
 * Stage: xds. SDS secrets: a workload's certificate and key, the mesh trust bundle, and credentials (a gateway
 * server's or an originating client's certificate and key, and a CA that verifies clients or servers). Sent only
 * over the authenticated stream of the proxy that uses them; never printed (see redactSecrets).
 */
import { credentialCaSecretName, credentialSecretName, SECRET_TRUST_BUNDLE, SECRET_WORKLOAD } from '../names.js';

export function buildWorkloadSecret(chainPem: string, keyPem: string): object {
  return {
    name: SECRET_WORKLOAD,
    tls_certificate: { certificate_chain: { inline_string: chainPem }, private_key: { inline_string: keyPem } },
  };
}

export function buildTrustBundleSecret(bundlePem: string): object {
  return { name: SECRET_TRUST_BUNDLE, validation_context: { trusted_ca: { inline_string: bundlePem } } };
}

/** A credential's files as they were read: PEM text. */
export interface CredentialPem {
  /** tls.crt and tls.key: a gateway server's certificate, or the client certificate TLS origination presents. */
  certChainPem?: string;
  keyPem?: string;
  /** ca.crt: verifies client certificates (gateway MUTUAL) or the server (TLS origination). */
  caPem?: string;
}

/**
 * The SDS secrets of one credential, limited to the parts asked for (and present): the certificate and key, and
 * the CA as a validation context.
 */
export function buildCredentialSecrets(
  name: string,
  c: CredentialPem,
  parts: { certificate: boolean; ca: boolean } = { certificate: true, ca: true },
): object[] {
  const out: object[] = [];
  if (parts.certificate && c.certChainPem !== undefined && c.keyPem !== undefined) {
    const pair = { certificate_chain: { inline_string: c.certChainPem }, private_key: { inline_string: c.keyPem } };
    out.push({ name: credentialSecretName(name), tls_certificate: pair });
  }
  if (parts.ca && c.caPem !== undefined) {
    out.push({ name: credentialCaSecretName(name), validation_context: { trusted_ca: { inline_string: c.caPem } } });
  }
  return out;
}

/** A copy of a resource's JSON with private keys replaced, for status pages, logs and dumps. */
export function redactSecrets<T>(json: T): T {
  if (Array.isArray(json)) return json.map(redactSecrets) as T;
  if (json === null || typeof json !== 'object') return json;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json as Record<string, unknown>))
    out[k] = k === 'private_key' ? { inline_string: '<redacted>' } : redactSecrets(v);
  return out as T;
}
