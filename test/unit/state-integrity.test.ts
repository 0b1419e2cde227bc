/**
 * State integrity: the control plane's state directory (CA, xDS serving CA, token key, last good revision) is
 * created on the first start only. Afterwards a missing, truncated, mismatched or weak file stops the start with an
 * error naming the file, and nothing is generated over it (Envoys and workloads trust what was there). State files
 * are written atomically: a writer killed mid-write leaves the old file or the new one, never a torn mix.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ControlPlane } from '../../src/app/control-plane.js';
import { createLogger, silentLogger, type Logger } from '../../src/app/logger.js';
import { Authority } from '../../src/ca/authority.js';
import { systemClock } from '../../src/ca/clock.js';
import { runBootstrap } from '../../src/cli/bootstrap.js';
import { writeFileAtomic } from '../../src/util/files.js';

const tmp = (what: string) => mkdtempSync(path.join(os.tmpdir(), `chancery-state-${what}-`));
const WORKLOAD = `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-1, namespace: shop, labels: { app: web } }
spec: { address: 127.0.22.30, serviceAccount: web }
`;

function policyDir(): string {
  const dir = tmp('policy');
  writeFileSync(path.join(dir, 'web.yaml'), WORKLOAD);
  return dir;
}

function plane(stateDir: string, o: { configDir?: string; log?: Logger; extra?: object } = {}): ControlPlane {
  const configDir = o.configDir ?? policyDir();
  const settings = { configDir, stateDir, xdsAddress: '127.0.22.1:0', maxNewStreamsPerSecond: 100, watch: false };
  return new ControlPlane({ ...settings, ...o.extra }, o.log ?? silentLogger);
}

/** Starts and stops a control plane; resolves to the error its start failed with (undefined if it started). */
async function startError(stateDir: string, o: Parameters<typeof plane>[1] = {}): Promise<Error | undefined> {
  const cp = plane(stateDir, o);
  const err = await cp.start().then(() => undefined, (e: Error) => e);
  await cp.stop();
  return err;
}

/** A state directory after one clean start: the baseline every case tampers with. */
async function freshState(): Promise<string> {
  const dir = path.join(tmp('dir'), 'state');
  assert.equal(await startError(dir), undefined, 'the first start creates the state');
  return dir;
}

const file = (dir: string, rel: string) => path.join(dir, rel);
const truncate = (f: string) => writeFileSync(f, readFileSync(f, 'utf8').slice(0, 90));
const otherKeyPem = () =>
  generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const KEY_BLOCK = /-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----\n/;
const write = (d: string, rel: string, text: string) => writeFileSync(file(d, rel), text);
const read = (d: string, rel: string) => readFileSync(file(d, rel), 'utf8');

describe('state directory', () => {
  test('the first start creates the CA, the xDS CA and the token key (owner-only); the next loads them', async () => {
    const dir = await freshState();
    for (const f of ['ca/root-key.pem', 'ca/root-cert.pem', 'ca/xds-ca.pem', 'xds-token.key']) {
      assert.ok(existsSync(file(dir, f)), `${f} was created`);
      assert.equal(statSync(file(dir, f)).mode & 0o777, 0o600, `${f} is owner-only`);
    }
    const first = plane(dir);
    await first.start();
    const signer = first.authority.signerInfo().serial;
    const token = await first.issueToken('shop/web-1');
    await first.stop();
    const again = plane(dir);
    await again.start();
    try {
      assert.equal(again.authority.signerInfo().serial, signer, 'the same root');
      assert.equal((await again.tokens.verify(token)).ok, true, 'tokens issued before the restart are still valid');
    } finally {
      await again.stop();
    }
  });

  // Each case: what is done to a healthy state directory, the file the error must name, what it must say.
  type Case = { name: string; tamper: (dir: string) => void; names: string; says: RegExp; absent?: string };
  const lost = (rel: string, what = rel): Case => ({
    name: `${what} missing`,
    tamper: (d) => rmSync(file(d, rel), { recursive: true }),
    names: rel,
    says: /missing/,
    absent: rel.endsWith('/') ? `${rel}root-key.pem` : rel,
  });
  const bad = (name: string, names: string, says: RegExp, tamper: (d: string) => void): Case => ({
    name,
    names,
    says,
    tamper,
  });
  const cases: Case[] = [
    lost('ca/root-key.pem'),
    lost('ca/root-cert.pem'),
    lost('ca/', 'the whole CA directory'),
    lost('xds-token.key'),
    lost('ca/xds-ca.pem'),
    bad('a 3-byte token key', 'xds-token.key', /3 bytes.*at least 32/, (d) => write(d, 'xds-token.key', 'YWJj\n')),
    bad('a token key that is not base64', 'xds-token.key', /base64/, (d) => write(d, 'xds-token.key', '%% no %%\n')),
    bad('a truncated token key', 'xds-token.key', /at least 32/, (d) =>
      write(d, 'xds-token.key', read(d, 'xds-token.key').slice(0, 12)),
    ),
    bad('a CA key that does not match its certificate', 'ca/root-key.pem', /does not match/, (d) =>
      write(d, 'ca/root-key.pem', otherKeyPem()),
    ),
    bad('a truncated root certificate', 'ca/root-cert.pem', /certificate/, (d) =>
      truncate(file(d, 'ca/root-cert.pem')),
    ),
    bad('a truncated root key', 'ca/root-key.pem', /key/, (d) => truncate(file(d, 'ca/root-key.pem'))),
    bad('an empty trust bundle', 'ca/trust-bundle.pem', /no certificate/, (d) => write(d, 'ca/trust-bundle.pem', '')),
    bad('a truncated trust bundle', 'ca/trust-bundle.pem', /certificate/, (d) =>
      truncate(file(d, 'ca/trust-bundle.pem')),
    ),
    bad('a trust bundle without the signing root', 'ca/trust-bundle.pem', /does not contain the root/, (d) =>
      write(d, 'ca/trust-bundle.pem', read(d, 'ca/xds-ca.pem').replace(KEY_BLOCK, '')),
    ),
    bad('a truncated xDS CA', 'ca/xds-ca.pem', /certificate|key/, (d) => truncate(file(d, 'ca/xds-ca.pem'))),
    bad('an xDS CA whose key does not match', 'ca/xds-ca.pem', /does not match/, (d) =>
      write(d, 'ca/xds-ca.pem', read(d, 'ca/xds-ca.pem').replace(KEY_BLOCK, otherKeyPem())),
    ),
  ];
  for (const c of cases) {
    test(`refused at start, naming the file: ${c.name}`, async () => {
      const dir = await freshState();
      c.tamper(dir);
      const err = await startError(dir);
      assert.ok(err, 'the control plane refused to start');
      assert.ok(err.message.includes(path.join(dir, c.names)), `the error names ${c.names}: ${err.message}`);
      assert.match(err.message, c.says);
      if (c.absent) assert.equal(existsSync(file(dir, c.absent)), false, `no new ${c.absent} was generated`);
    });
  }

  test('the error for lost state says what to do', async () => {
    const dir = await freshState();
    rmSync(file(dir, 'ca/root-key.pem'));
    const err = await startError(dir);
    assert.match(err!.message, /restore it from a backup/);
    assert.match(err!.message, /--ca-cert/, 'mentions a user-supplied CA (a restart without --ca-cert looks the same)');
  });

  test('chancery bootstrap refuses a damaged state directory too', async () => {
    const dir = await freshState();
    const config = policyDir();
    rmSync(file(dir, 'ca/xds-ca.pem'));
    const errors: string[] = [];
    const orig = console.error;
    console.error = (...a: unknown[]) => errors.push(a.join(' '));
    try {
      const args = ['--config', config, '--workload', 'shop/web-1', '--out', file(dir, 'b.json'), '--state-dir', dir];
      const code = await runBootstrap(args);
      assert.notEqual(code, 0);
    } finally {
      console.error = orig;
    }
    assert.match(errors.join('\n'), /xds-ca\.pem/);
    assert.equal(existsSync(file(dir, 'ca/xds-ca.pem')), false);
  });

  test('a corrupt last-good.json is reported by name and ignored; the control plane starts', async () => {
    // Only a Git source reads it (to serve the last good commit when the newest is rejected at start).
    const repo = tmp('repo');
    const git = (...a: string[]) => execFileSync('git', a, { cwd: repo, encoding: 'utf8' });
    git('init', '-q', '-b', 'main');
    writeFileSync(path.join(repo, 'bad.yaml'), 'kind: [unclosed\n');
    git('add', '.');
    git('-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-q', '-m', 'bad');
    const dir = path.join(tmp('dir'), 'state');
    const git0 = { git: { repo, branch: 'main', subdir: '', pollMs: 60_000 } };
    assert.equal(await startError(dir, { extra: git0 }), undefined);
    writeFileSync(file(dir, 'last-good.json'), '{"source": "x", "revis');
    const lines: string[] = [];
    const err = await startError(dir, { extra: git0, log: createLogger('info', (l) => lines.push(l)) });
    assert.equal(err, undefined, `started: ${err?.message}`);
    const entries = lines.map((l) => JSON.parse(l));
    const logged = entries.find((l) => l.level === 'error' && JSON.stringify(l).includes('last-good.json'));
    assert.ok(logged, `an error naming last-good.json was logged:\n${lines.join('\n')}`);
    assert.ok(JSON.stringify(logged).includes(file(dir, 'last-good.json')));
  });
});

describe('atomic state writes', () => {
  test('a write replaces the file whole, owner-only, leaving no temporary file', () => {
    const dir = tmp('atomic');
    const f = path.join(dir, 'x.json');
    writeFileSync(f, 'old');
    writeFileAtomic(f, 'new');
    assert.equal(readFileSync(f, 'utf8'), 'new');
    assert.equal(statSync(f).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['x.json']);
  });

  test('a writer killed mid-write leaves the old content or the new, never a torn file', async () => {
    const dir = tmp('atomic-kill');
    const f = path.join(dir, 'big.txt');
    const size = 8 * 1024 * 1024;
    writeFileSync(f, 'A'.repeat(size));
    const modUrl = new URL('../../src/util/files.ts', import.meta.url).href;
    const script = `import { writeFileAtomic } from ${JSON.stringify(modUrl)};
      for (let i = 0; ; i++) {
        writeFileAtomic(${JSON.stringify(f)}, (i % 2 ? 'A' : 'B').repeat(${size}));
        process.stdout.write('.');
      }`;
    const args = ['--import', 'tsx', '--input-type=module', '-e', script];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let writes = 0;
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (b: Buffer) => {
        writes += b.length;
        if (writes >= 3) resolve(); // killed somewhere inside a later write
      });
      child.on('exit', () => resolve());
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    const text = readFileSync(f, 'utf8');
    assert.equal(text.length, size, 'never truncated');
    assert.ok(text === 'A'.repeat(size) || text === 'B'.repeat(size), 'never a mix');
  });
});

test('a root rotation interrupted between the new key and certificate is completed at the next start', async () => {
  const dir = await freshState();
  const oldCert = readFileSync(file(dir, 'ca/root-cert.pem'), 'utf8');
  const ca = await Authority.open({ stateDir: dir, clock: systemClock, create: false });
  await ca.beginRootRotation();
  ca.switchSigner();
  const newSigner = ca.signerInfo().serial;
  writeFileSync(file(dir, 'ca/root-cert.pem'), oldCert); // as if the process died before the certificate's rename
  const again = await Authority.open({ stateDir: dir, clock: systemClock, create: false });
  assert.equal(again.signerInfo().serial, newSigner, 'signs with the new root, whose certificate was in the bundle');
  assert.notEqual(readFileSync(file(dir, 'ca/root-cert.pem'), 'utf8'), oldCert, 'root-cert.pem repaired');
});

test('the root key stays a valid key after the control plane rewrote it in a root rotation', async () => {
  const dir = await freshState();
  const cp = plane(dir);
  await cp.start();
  try {
    await cp.rotateRoot(5_000);
  } finally {
    await cp.stop();
  }
  assert.doesNotThrow(() => createPrivateKey(readFileSync(file(dir, 'ca/root-key.pem'), 'utf8')));
  assert.equal(await startError(dir), undefined, 'the rotated state loads');
});
