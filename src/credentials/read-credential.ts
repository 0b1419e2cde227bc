/**
 * Gateway TLS credentials, which never live in the policy repository: `<dir>/<name>/tls.crt` (the certificate
 * chain, leaf first), `tls.key` (its private key) and, for servers that verify clients, `ca.crt`. Kubernetes TLS
 * Secrets mounted as volumes have this layout, so `--credentials-dir` can be such a mount. Reading checks what
 * Envoy would otherwise reject at run time (or worse, accept): PEM that parses, a key that matches the leaf.
 * Pure apart from reading the files; nothing here is ever logged but names, versions and problems.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { CredentialPem } from '../xds/resources/secret.js';

export const CREDENTIAL_FILES = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' } as const;
const MAX_FILE_BYTES = 1024 * 1024;

export interface Credential extends CredentialPem {
  name: string;
  /** Content hash of the files: equal versions, equal secrets. */
  version: string;
  /** The leaf's (or, for a CA-only credential, the first CA's) names and validity, for status and warnings. */
  subject: string;
  dnsNames: string[];
  notBefore: string;
  notAfter: string;
}

/** What the compiler needs to know about a credential a Gateway names (see model/gateways.ts). */
export type CredentialState =
  { ok: true; hasCertificate: boolean; hasCa: boolean; warnings: string[] } | { ok: false; problem: string };

export type CredentialRead = { ok: true; credential: Credential } | { ok: false; problem: string };

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function readPem(file: string, label: string): string | { problem: string } {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) return { problem: `${label} ${file} is not a file` };
    size = st.size;
  } catch {
    return { problem: `${label} ${file} does not exist` };
  }
  if (size > MAX_FILE_BYTES) return { problem: `${label} ${file} is larger than 1 MiB` };
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return { problem: `${label} ${file} cannot be read: ${why}` };
  }
}

function certificates(pem: string, file: string): X509Certificate[] | { problem: string } {
  const blocks = pem.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) return { problem: `${file} holds no PEM certificate` };
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    return { problem: `${file} holds a certificate that does not parse: ${(err as Error).message}` };
  }
}

/** Reads ca.crt when there is one: undefined when absent, a problem when it is there but bad. */
function readCa(caFile: string): { pem?: string; certs: X509Certificate[] } | { problem: string } {
  const ca = readPem(caFile, 'CA bundle');
  if (typeof ca !== 'string') return ca.problem.endsWith('does not exist') ? { certs: [] } : ca;
  const parsed = certificates(ca, caFile);
  return Array.isArray(parsed) ? { pem: ca, certs: parsed } : parsed;
}

/** The certificate and key, checked to belong together; absent (both files missing) is not a problem here. */
function readPair(
  certFile: string,
  keyFile: string,
): { certPem: string; keyPem: string; leaf: X509Certificate } | { absent: true } | { problem: string } {
  if (!existsSync(certFile) && !existsSync(keyFile)) return { absent: true };
  const certPem = readPem(certFile, 'certificate');
  if (typeof certPem !== 'string') return certPem;
  const keyPem = readPem(keyFile, 'private key');
  if (typeof keyPem !== 'string') return keyPem;
  const chain = certificates(certPem, certFile);
  if (!Array.isArray(chain)) return chain;
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    return { problem: `${keyFile} is not a PEM private key: ${(err as Error).message}` };
  }
  // A certificate and key from two rotations (tls.crt written, tls.key not yet) must never be served.
  if (!chain[0].checkPrivateKey(key)) {
    return { problem: `${keyFile} is not the key of the first certificate in ${certFile}` };
  }
  return { certPem, keyPem, leaf: chain[0] };
}

/**
 * Reads and checks one credential directory: tls.crt and tls.key (a gateway server's certificate, or a client
 * certificate for TLS origination), and/or ca.crt. A directory with only ca.crt is a CA credential (Istio's
 * `cacert`-only secret), enough for origination in SIMPLE mode; what each use needs is checked by the compiler.
 */
export function readCredential(dir: string, name: string): CredentialRead {
  const base = path.join(dir, name);
  const certFile = path.join(base, CREDENTIAL_FILES.cert);
  const keyFile = path.join(base, CREDENTIAL_FILES.key);
  const caFile = path.join(base, CREDENTIAL_FILES.ca);
  const ca = readCa(caFile);
  if ('problem' in ca) return { ok: false, problem: ca.problem };
  const pair = readPair(certFile, keyFile);
  if ('problem' in pair) return { ok: false, problem: pair.problem };
  if ('absent' in pair && ca.pem === undefined) {
    return { ok: false, problem: `certificate ${certFile} does not exist (nor does ${caFile})` };
  }
  const caPem = ca.pem;
  const hasPair = !('absent' in pair);
  const leaf = hasPair ? pair.leaf : ca.certs[0];
  const version = createHash('sha256')
    .update(hasPair ? pair.certPem : '')
    .update('\0')
    .update(hasPair ? pair.keyPem : '')
    .update('\0')
    .update(caPem ?? '')
    .digest('base64url');
  const dnsNames = (leaf.subjectAltName ?? '')
    .split(', ')
    .filter((n) => n.startsWith('DNS:'))
    .map((n) => n.slice(4));
  const credential: Credential = {
    name,
    version,
    ...(hasPair ? { certChainPem: pair.certPem, keyPem: pair.keyPem } : {}),
    ...(caPem !== undefined ? { caPem } : {}),
    subject: leaf.subject.split('\n').join(', '),
    dnsNames,
    notBefore: new Date(leaf.validFrom).toISOString(),
    notAfter: new Date(leaf.validTo).toISOString(),
  };
  return { ok: true, credential };
}

/** A lookup for the compiler that reads `dir` afresh (chancery check --credentials-dir). */
export function directoryLookup(dir: string, now = Date.now): (name: string) => CredentialState {
  return (name) => stateOf(readCredential(dir, name), now());
}

/** The compiler's view of a read: problems block the revision, an expired certificate is only a warning. */
export function stateOf(r: CredentialRead, now: number): CredentialState {
  if (!r.ok) return r;
  const c = r.credential;
  const warnings: string[] = [];
  const file = `${c.name}/${c.certChainPem !== undefined ? CREDENTIAL_FILES.cert : CREDENTIAL_FILES.ca}`;
  if (Date.parse(c.notAfter) <= now) warnings.push(`the certificate in ${file} expired at ${c.notAfter}`);
  if (Date.parse(c.notBefore) > now) warnings.push(`the certificate in ${file} is valid only from ${c.notBefore}`);
  return { ok: true, hasCertificate: c.certChainPem !== undefined, hasCa: c.caPem !== undefined, warnings };
}
