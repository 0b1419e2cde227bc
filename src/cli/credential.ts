/**
 * `chancery credential create`: a self-signed gateway credential, to try an HTTPS gateway out (the example mesh's
 * `npm start` makes one). It is written where `serve --credentials-dir` reads it, never into the policy repository.
 * Production credentials come from your PKI (or ACME), written to the same layout: DIR/NAME/tls.crt and tls.key.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createTlsCertificate, exportPrivateKeyPem, generateKeyPair, toPem } from '../ca/x509.js';
import { CREDENTIAL_FILES } from '../credentials/read-credential.js';
import { CREDENTIAL_NAME } from '../policy/kinds/gateway.js';
import { DNS_NAME } from '../policy/kinds/common.js';
import { writeFileAtomic } from '../util/files.js';
import { command, parse, UsageError } from './args.js';

const HELP = `Usage: chancery credential create NAME --host HOST [--host HOST ...] [--credentials-dir DIR] [--days N]
                                [--if-missing]

Writes a self-signed certificate (ECDSA P-256, a CA of its own, valid N days, default 90) for the host names and
its key to DIR/NAME/tls.crt and DIR/NAME/tls.key (mode 0600; DIR defaults to .chancery/credentials). A Gateway
server names it with tls.credentialName: NAME. Clients trust it with e.g. curl --cacert DIR/NAME/tls.crt.
--if-missing leaves an existing credential alone.`;

export function runCredential(argv: string[]): Promise<number> {
  return command(HELP, argv, () => {
    const { values, positionals } = parse(
      argv,
      {
        host: { type: 'string', multiple: true, default: [] },
        'credentials-dir': { type: 'string', default: path.join('.chancery', 'credentials') },
        days: { type: 'string', default: '90' },
        'if-missing': { type: 'boolean', default: false },
      },
      true,
    );
    const [verb, name, ...extra] = positionals;
    if (verb !== 'create' || !name || extra.length > 0) {
      throw new UsageError('usage: chancery credential create NAME --host HOST');
    }
    if (!CREDENTIAL_NAME.test(name)) {
      throw new UsageError(`"${name}" is not a credential name (lower-case letters, digits, -, _, .)`);
    }
    const hosts = values.host ?? [];
    if (hosts.length === 0) throw new UsageError('--host is required (the name clients connect to)');
    for (const h of hosts) if (!DNS_NAME.test(h)) throw new UsageError(`--host "${h}" is not a host name`);
    const days = Number(values.days);
    if (!Number.isInteger(days) || days < 1 || days > 825) {
      throw new UsageError('--days must be a whole number from 1 to 825');
    }
    const dir = path.join(values['credentials-dir']!, name);
    const certFile = path.join(dir, CREDENTIAL_FILES.cert);
    if (values['if-missing'] && existsSync(certFile)) return 0;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const keys = generateKeyPair();
    const now = Date.now();
    const validity = { notBefore: new Date(now - 60_000), notAfter: new Date(now + days * 86_400_000) };
    const der = createTlsCertificate({ keys, dnsNames: hosts, ...validity });
    // The key first: a watcher that sees the new certificate beside the old key keeps serving the old pair.
    writeFileAtomic(path.join(dir, CREDENTIAL_FILES.key), exportPrivateKeyPem(keys.privateKey));
    writeFileAtomic(certFile, toPem(der, 'CERTIFICATE'), 0o644);
    console.log(`wrote ${certFile} and ${CREDENTIAL_FILES.key} (self-signed for ${hosts.join(', ')}, ${days} days)`);
    return 0;
  });
}
