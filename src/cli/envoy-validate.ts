/**
 * Runs Envoy's own validation (`envoy --mode validate`) on one proxy's compiled resources, with throwaway
 * certificates standing in for the SDS secrets (gateway credentials included). Used by `chancery render --envoy`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Authority } from '../ca/authority.js';
import { systemClock } from '../ca/clock.js';
import { createTlsCertificate, exportPrivateKeyPem, generateKeyPair, toPem } from '../ca/x509.js';
import { buildCredentialSecrets, buildTrustBundleSecret, buildWorkloadSecret } from '../xds/resources/secret.js';
import { staticBootstrap } from '../xds/static-bootstrap.js';
import type { ResourceSet } from '../xds/translate.js';

/** A self-signed stand-in for each credential a gateway uses (with a CA, for servers that verify clients). */
function placeholderCredentials(names: readonly string[]): object[] {
  if (names.length === 0) return [];
  const keys = generateKeyPair();
  const now = Date.now();
  const validity = { notBefore: new Date(now), notAfter: new Date(now + 3_600_000) };
  const cert = toPem(createTlsCertificate({ keys, dnsNames: ['placeholder.invalid'], ...validity }), 'CERTIFICATE');
  const pem = { certChainPem: cert, keyPem: exportPrivateKeyPem(keys.privateKey), caPem: cert };
  return names.flatMap((n) => buildCredentialSecrets(n, pem));
}

export async function validateWithEnvoy(
  envoyBin: string,
  set: ResourceSet,
  identity: string,
  credentials: readonly string[] = [],
): Promise<{ ok: boolean; output: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chancery-render-'));
  try {
    const authority = await Authority.open({ stateDir: dir, clock: systemClock });
    const svid = await authority.issue(identity, 3_600_000);
    const file = path.join(dir, 'envoy.json');
    const mesh = [buildWorkloadSecret(svid.chainPem, svid.keyPem), buildTrustBundleSecret(authority.trustBundlePem())];
    const secrets = [...mesh, ...placeholderCredentials(credentials)];
    writeFileSync(file, JSON.stringify(staticBootstrap(set, secrets)));
    const r = spawnSync(envoyBin, ['--mode', 'validate', '-c', file, '--disable-hot-restart', '--log-level', 'error'], { encoding: 'utf8', timeout: 60_000 });
    if (r.error) return { ok: false, output: `cannot run ${envoyBin}: ${r.error.message}` };
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
