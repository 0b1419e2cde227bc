/**
 * The certificate authority: issuance (fields a verifier relies on), the DER fast path against node's own X.509
 * parser, rotation schedule with jitter on a fake clock, root rotation steps, user-supplied CAs, and xDS tokens.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Authority } from '../../src/ca/authority.js';
import { FakeClock } from '../../src/ca/clock.js';
import * as D from '../../src/ca/der.js';
import { SvidManager } from '../../src/ca/svids.js';
import { createRootCertificate, exportPrivateKeyPem, generateKeyPair, keyMaterial, toPem } from '../../src/ca/x509.js';
import { ProxyTokens } from '../../src/server/proxy-auth.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'chancery-ca-test-'));
const ID = 'spiffe://cluster.local/ns/shop/sa/frontend';

test('a workload certificate carries exactly the SPIFFE id, short life, client+server auth, and chains to the root', async () => {
  const clock = new FakeClock(Date.parse('2026-06-01T00:00:00Z'));
  const dir = tmp();
  const ca = await Authority.open({ stateDir: dir, clock });
  assert.equal(statSync(path.join(dir, 'ca', 'root-key.pem')).mode & 0o777, 0o600, 'root key is owner-only');
  const svid = await ca.issue(ID, 3_600_000);
  const leaf = new X509Certificate(svid.chainPem);
  const root = new X509Certificate(ca.trustBundlePem());
  assert.equal(leaf.subjectAltName, `URI:${ID}`);
  assert.equal(leaf.ca, false);
  assert.ok(root.ca);
  assert.ok(leaf.verify(root.publicKey));
  assert.ok(leaf.checkIssued(root));
  assert.equal(new Date(leaf.validTo).getTime(), clock.now() + 3_600_000);
  assert.equal(new Date(leaf.validFrom).getTime(), clock.now() - 60_000, 'backdated a minute for clock skew');
  assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.equal(leaf.serialNumber.toLowerCase(), svid.serial);
  assert.match(svid.keyPem, /BEGIN PRIVATE KEY/);
  assert.ok(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(svid.keyPem)));
  assert.notEqual((await ca.issue(ID, 3_600_000)).serial, svid.serial, 'serials are unique');
});

test("the control plane's identity is reserved: the CA refuses to issue it to a workload", async () => {
  const ca = await Authority.open({ stateDir: tmp(), clock: new FakeClock(Date.now()) });
  const self = 'spiffe://cluster.local/ns/istio-system/sa/chancery';
  ca.reserve([self]);
  await assert.rejects(ca.issue(self, 60_000), /reserved for the control plane/);
  const elsewhere = 'spiffe://cluster.local/ns/shop/sa/chancery';
  assert.ok(await ca.issue(elsewhere, 60_000), 'the same name elsewhere is an ordinary identity');
});

test('DER building blocks', () => {
  assert.deepEqual([...D.integer(new Uint8Array([0x00, 0x7f]))], [0x02, 0x01, 0x7f]);
  assert.deepEqual([...D.integer(new Uint8Array([0x80]))], [0x02, 0x02, 0x00, 0x80]);
  assert.deepEqual([...D.oid('1.2.840.10045.4.3.2')], [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
  assert.equal(Buffer.from(D.time(new Date('2049-12-31T23:59:59Z'))).toString('latin1').slice(2), '491231235959Z');
  assert.equal(Buffer.from(D.time(new Date('2050-01-01T00:00:00Z'))).toString('latin1').slice(2), '20500101000000Z');
  assert.deepEqual([...D.tlv(0x04, new Uint8Array(200)).subarray(0, 3)], [0x04, 0x81, 200]);
});

test('rotation happens at the configured fraction of the lifetime, with jitter, and only for the rotated identity', async () => {
  const clock = new FakeClock();
  const ca = await Authority.open({ stateDir: tmp(), clock });
  const rotated: string[][] = [];
  const rnd = [0, 1]; // lowest and highest jitter
  const svids = new SvidManager(ca, clock, { ttlMs: 100_000, rotateAtFraction: 0.5, jitterFraction: 0.1 }, (ids) => rotated.push(ids), () => rnd.shift() ?? 0.5);
  await svids.sync(['spiffe://td/ns/a/sa/x', 'spiffe://td/ns/a/sa/y']);
  const s0 = svids.get('spiffe://td/ns/a/sa/x')!.serial;
  clock.advance(44_000);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(rotated, [], 'nothing before 45% of the life (lowest jitter)');
  clock.advance(2_000); // x was scheduled at 0.5 * 0.9 = 45 %
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(rotated, [['spiffe://td/ns/a/sa/x']]);
  assert.notEqual(svids.get('spiffe://td/ns/a/sa/x')!.serial, s0);
  clock.advance(9_000); // y at 0.5 * 1.1 = 55 %
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(rotated[1], ['spiffe://td/ns/a/sa/y']);
  await svids.sync(['spiffe://td/ns/a/sa/y']);
  assert.equal(svids.get('spiffe://td/ns/a/sa/x'), undefined, 'unused identities are forgotten');
  svids.stop();
});

test('root rotation: the new root joins the bundle, then signs, then the old one leaves', async () => {
  const ca = await Authority.open({ stateDir: tmp(), clock: new FakeClock(Date.now()) });
  const oldRoot = new X509Certificate(ca.trustBundlePem());
  await ca.beginRootRotation();
  assert.equal(ca.trustBundlePem().match(/BEGIN CERTIFICATE/g)!.length, 2);
  assert.ok(new X509Certificate((await ca.issue(ID, 60_000)).chainPem).verify(oldRoot.publicKey), 'still signed by the old root');
  ca.switchSigner();
  const leaf = new X509Certificate((await ca.issue(ID, 60_000)).chainPem);
  assert.ok(!leaf.verify(oldRoot.publicKey));
  ca.finishRootRotation();
  const bundle = new X509Certificate(ca.trustBundlePem());
  assert.ok(leaf.verify(bundle.publicKey));
  assert.equal(ca.trustBundlePem().match(/BEGIN CERTIFICATE/g)!.length, 1);
});

test('a user-supplied CA signs, and a non-CA certificate is refused', async () => {
  const dir = tmp();
  const keys = generateKeyPair();
  const now = new Date();
  const root = createRootCertificate(keys, 'Corp Root', now, new Date(now.getTime() + 86_400_000));
  writeFileSync(path.join(dir, 'ca.pem'), toPem(root, 'CERTIFICATE'));
  writeFileSync(path.join(dir, 'ca-key.pem'), exportPrivateKeyPem(keys.privateKey));
  const ca = await Authority.open({ stateDir: dir, clock: new FakeClock(Date.now()), files: { certFile: path.join(dir, 'ca.pem'), keyFile: path.join(dir, 'ca-key.pem') } });
  assert.ok(new X509Certificate((await ca.issue(ID, 60_000)).chainPem).verify(new X509Certificate(toPem(root, 'CERTIFICATE')).publicKey));
  const leaf = (await ca.issue(ID, 60_000)).chainPem;
  writeFileSync(path.join(dir, 'leaf.pem'), leaf);
  await assert.rejects(Authority.open({ stateDir: dir, clock: new FakeClock(), files: { certFile: path.join(dir, 'leaf.pem'), keyFile: path.join(dir, 'ca-key.pem') } }), /not a CA certificate/);
});

test('xDS tokens: subject is the node id; expired, forged and foreign-key tokens are refused', async () => {
  const dir = tmp();
  const tokens = ProxyTokens.open(dir);
  assert.equal(statSync(path.join(dir, 'xds-token.key')).mode & 0o777, 0o600);
  const t = await tokens.issue('shop/a-1', 60);
  assert.deepEqual(await tokens.verify(t), { ok: true, nodeId: 'shop/a-1' });
  assert.deepEqual(await tokens.verify(t, Date.now() + 120_000), { ok: false, reason: 'token expired' });
  const [h, p, s] = t.split('.');
  const forged = [h, Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'shop/b-1' })).toString('base64url'), s].join('.');
  assert.equal((await tokens.verify(forged)).ok, false);
  const other = await ProxyTokens.open(tmp()).issue('shop/a-1', 60);
  assert.equal((await tokens.verify(other)).ok, false, 'a token from another control plane');
  assert.equal((await tokens.verify('not.a.token')).ok, false);
});

test('serial numbers are valid DER however the random bytes fall (no leading zero byte)', () => {
  // A serial whose first random byte was 0x00 used to encode as a non-minimal INTEGER about once in 256 roots.
  for (let i = 0; i < 600; i++) {
    const keys = generateKeyPair();
    const der = createRootCertificate(keys, 'r', new Date(), new Date(Date.now() + 86_400_000));
    assert.doesNotThrow(() => new X509Certificate(der), `root ${i}`);
  }
});

test('workload key encoding: the hand-built P-256 PKCS#8 and SPKI are byte-for-byte what OpenSSL writes', () => {
  for (let i = 0; i < 300; i++) {
    const keys = generateKeyPair();
    const m = keyMaterial(keys);
    assert.equal(m.keyPem, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    assert.deepEqual(Buffer.from(m.spki), keys.publicKey.export({ type: 'spki', format: 'der' }));
  }
});
