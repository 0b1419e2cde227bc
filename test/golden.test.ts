/**
 * Golden tests: each policy set compiles to the expected per-proxy Envoy resources and diagnostics, and every
 * proxy's resources pass `envoy --mode validate` (Envoy's own full validation, the checks that would NACK at run
 * time). Cases: testdata/golden/<case>/input/, and every bundled example under examples/ (expected files in
 * testdata/golden/example-<name>/). `UPDATE_GOLDEN=1 npm test -- test/golden.test.ts` rewrites the expected files
 * and removes stale ones.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import os from 'node:os';
import { Authority } from '../src/ca/authority.js';
import { FakeClock } from '../src/ca/clock.js';
import { buildCredentialSecrets, buildTrustBundleSecret, buildWorkloadSecret } from '../src/xds/resources/secret.js';
import type { CredentialPem } from '../src/xds/resources/secret.js';
import { createTlsCertificate, exportPrivateKeyPem, generateKeyPair, toPem } from '../src/ca/x509.js';
import { credentialUsesOf } from '../src/ir/credentials.js';
import { stringify } from 'yaml';
import { compileSource } from '../src/compiler.js';
import { readDirectory } from '../src/source/directory.js';
import { SHORT_NAME } from '../src/xds/type-urls.js';
import { validateEnvoyConfig } from './support/envoy.js';
import { staticBootstrap } from '../src/xds/static-bootstrap.js';

const UPDATE = process.env.UPDATE_GOLDEN === '1';

/** Real SDS secrets from a throwaway CA, so Envoy validates the TLS contexts that reference them. */
let testSecrets: object[] = [];
/** A self-signed gateway credential for every credentialName a proxy uses (with ca.crt, for MUTUAL servers). */
let testCredential: CredentialPem;
before(async () => {
  const keys = generateKeyPair();
  const validity = { notBefore: new Date(), notAfter: new Date(Date.now() + 3_600_000) };
  const cert = toPem(createTlsCertificate({ keys, dnsNames: ['golden.example'], ...validity }), 'CERTIFICATE');
  testCredential = { certChainPem: cert, keyPem: exportPrivateKeyPem(keys.privateKey), caPem: cert };
  const clock = new FakeClock(Date.now());
  const authority = await Authority.open({ stateDir: mkdtempSync(path.join(os.tmpdir(), 'chancery-golden-ca-')), clock });
  const svid = await authority.issue('spiffe://cluster.local/ns/test/sa/test', 3_600_000);
  testSecrets = [buildWorkloadSecret(svid.chainPem, svid.keyPem), buildTrustBundleSecret(authority.trustBundlePem())];
});
const GOLDEN = 'testdata/golden';

const cases: { name: string; input: string; expected: string }[] = [
  ...readdirSync(GOLDEN)
    .filter((d) => existsSync(path.join(GOLDEN, d, 'input')))
    .map((d) => ({ name: d, input: path.join(GOLDEN, d, 'input'), expected: path.join(GOLDEN, d, 'expected') })),
  ...readdirSync('examples').map((d) => ({ name: `example-${d}`, input: path.join('examples', d), expected: path.join(GOLDEN, `example-${d}`, 'expected') })),
];

/** Revisions are content hashes of the input; goldens name them generically so edits to comments don't churn them. */
function stable(text: string, revision: string): string {
  return text.split(revision).join('<revision>');
}

function check(file: string, actual: string): void {
  if (UPDATE) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.ok(existsSync(file), `missing golden ${file}; run UPDATE_GOLDEN=1 npm test -- test/golden.test.ts`);
  assert.equal(actual, readFileSync(file, 'utf8'), `${file} differs; if the change is intended, run UPDATE_GOLDEN=1`);
}

for (const c of cases) {
  describe(`golden ${c.name}`, () => {
    const src = readDirectory(c.input);
    const result = compileSource(src.value, src.diagnostics);
    const written = new Set<string>();

    test('diagnostics', () => {
      const file = path.join(c.expected, 'diagnostics.yaml');
      written.add(file);
      const diags = result.diagnostics.map((d) => ({
        code: d.code,
        severity: d.severity,
        at: d.location ? `${d.location.file}:${d.location.line}:${d.location.column}` : undefined,
        path: d.path,
        message: d.message,
      }));
      check(file, stable(stringify({ accepted: result.ok, diagnostics: diags }), result.revision));
    });

    for (const [id, proxy] of result.proxies) {
      test(`proxy ${id}: resources match and pass envoy --mode validate`, () => {
        const file = path.join(c.expected, `${id.replace('/', '.')}.yaml`);
        written.add(file);
        const doc: Record<string, unknown> = { ir: proxy.ir };
        for (const [t, list] of proxy.resources) doc[SHORT_NAME[t]] = list.map((r) => r.json);
        check(file, stable(stringify(doc, { aliasDuplicateObjects: false }), result.revision));
        const uses = credentialUsesOf(proxy.ir);
        const credentials = uses.flatMap((u) => buildCredentialSecrets(u.name, testCredential, u));
        const v = validateEnvoyConfig(staticBootstrap(proxy.resources, [...testSecrets, ...credentials]));
        assert.ok(v.ok, `envoy --mode validate rejected ${id}:\n${v.output}`);
      });
    }

    test('no stale golden files', () => {
      const present = existsSync(c.expected) ? readdirSync(c.expected).map((f) => path.join(c.expected, f)) : [];
      const stale = present.filter((f) => !written.has(f));
      if (UPDATE) for (const f of stale) rmSync(f);
      else assert.deepEqual(stale, [], 'stale golden files; run UPDATE_GOLDEN=1');
    });
  });
}
