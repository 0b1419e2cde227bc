/**
 * Stage: ir. The credentials (directories under `serve --credentials-dir`) a proxy uses, and which parts of each:
 * a gateway's TLS servers terminate with theirs, a cluster that originates TLS with `credentialName` presents its
 * certificate (MUTUAL) and verifies the server with its CA. A proxy is served exactly these parts over SDS and
 * nothing else: a sidecar that only needs a credential's CA never receives its private key. Reads ProxyIR only.
 */
import { credentialsOf as gatewayCredentialsOf } from './gateway.js';
import type { ProxyIR } from './types.js';

/** One credential a proxy uses: `certificate` (tls.crt and tls.key) and/or `ca` (ca.crt). */
export interface CredentialUse {
  name: string;
  certificate: boolean;
  ca: boolean;
}

/** Sorted by name; each credential once, with every part any of the proxy's listeners or clusters needs. */
export function credentialUsesOf(ir: ProxyIR): CredentialUse[] {
  const uses = new Map<string, CredentialUse>();
  const use = (name: string, part: 'certificate' | 'ca') => {
    const u = uses.get(name) ?? { name, certificate: false, ca: false };
    u[part] = true;
    uses.set(name, u);
  };
  // A gateway server's credential: its certificate, and the CA that verifies clients when it has one.
  for (const name of gatewayCredentialsOf(ir)) {
    use(name, 'certificate');
    use(name, 'ca');
  }
  for (const c of ir.clusters) {
    const o = c.originate;
    if (o?.client && 'credential' in o.client) use(o.client.credential, 'certificate');
    if (o?.verify && 'caCredential' in o.verify) use(o.verify.caCredential, 'ca');
  }
  return [...uses.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The names of the credentials a proxy uses (a rotation of one of them republishes its secrets). */
export function credentialNamesOf(ir: ProxyIR): string[] {
  return credentialUsesOf(ir).map((u) => u.name);
}
