/**
 * Stage: xds. SDS secrets: a workload's certificate and key, and the mesh trust bundle. Sent only over the
 * workload's own authenticated stream; never printed (see redactSecrets).
 */
import { SECRET_TRUST_BUNDLE, SECRET_WORKLOAD } from '../names.js';

export function buildWorkloadSecret(chainPem: string, keyPem: string): object {
  return { name: SECRET_WORKLOAD, tls_certificate: { certificate_chain: { inline_string: chainPem }, private_key: { inline_string: keyPem } } };
}

export function buildTrustBundleSecret(bundlePem: string): object {
  return { name: SECRET_TRUST_BUNDLE, validation_context: { trusted_ca: { inline_string: bundlePem } } };
}

/** A copy of a resource's JSON with private keys replaced, for status pages, logs and dumps. */
export function redactSecrets<T>(json: T): T {
  if (Array.isArray(json)) return json.map(redactSecrets) as T;
  if (json === null || typeof json !== 'object') return json;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) out[k] = k === 'private_key' ? { inline_string: '<redacted>' } : redactSecrets(v);
  return out as T;
}
