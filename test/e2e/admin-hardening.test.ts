/**
 * The admin port under attack. Malformed requests (targets, encodings, methods, headers, bodies, and a seeded fuzz
 * of all of them) get a 4xx and never take the process down; state-changing actions need the admin credential from
 * the state directory and refuse cross-origin requests (a real browser on other origins tries no-cors fetches and a
 * form POST); `Host` must be an allowed name (DNS rebinding, in the browser too); beyond loopback the port needs TLS
 * and the credential for reads, and the dashboard asks for it; `chancery serve` survives what used to kill it, and
 * `chancery status` / `rotate-root` keep working with no new flags.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import http, { type Server } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls, { type PeerCertificate } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startStatusServer } from '../../src/admin/status-server.js';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { launchChromium } from '../support/browser.js';
import { request, waitFor, type Reply } from '../support/http.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { startPlane } from '../support/mesh-harness.js';
import { freePort } from '../support/ports.js';
import { rawHttp } from '../support/raw-http.js';

const ADMIN = '127.0.21.2'; // the in-process admin port under test
const ATTACKER = '127.0.21.3'; // another origin: a page the operator happens to open
const TLS_HOST = '127.0.21.5'; // an admin port configured as if exposed: TLS and the credential for reads
const SERVE = '127.0.21.10'; // `chancery serve` child processes
const SERVE_TLS = '127.0.21.11';
const CREDENTIAL_FILE = 'admin.token';
const BIN = path.resolve('bin/chancery.mjs');

const tmp = (what: string): string => mkdtempSync(path.join(os.tmpdir(), `chancery-admin-${what}-`));
const isClientError = (status: number): boolean => status >= 400 && status < 500;

/** A self-signed certificate for the TLS admin ports (user-supplied files, as an operator would give them). */
function testCertificate(): { certFile: string; keyFile: string; dir: string } {
  const dir = tmp('tls');
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=chancery-admin-test', '-addext', `subjectAltName=IP:${TLS_HOST},IP:${SERVE_TLS}`,
    '-keyout', keyFile, '-out', certFile,
  ], { stdio: 'ignore' });
  return { certFile, keyFile, dir };
}

function httpsRequest(o: { host: string; port: number; path: string; ca: string; headers?: Record<string, string> }):
  Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // Verify the certificate against the address, whatever Host header the request sends.
    const checkServerIdentity = (_: string, c: PeerCertificate) => tls.checkServerIdentity(o.host, c);
    const req = https.request({ ...o, agent: false, timeout: 5000, checkServerIdentity }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Resolves to the error startStatusServer fails with, or closes what it started and resolves to 'started'. */
async function startFailure(start: Promise<Server>): Promise<Error | 'started'> {
  return start.then(
    (s) => (s.close(), 'started' as const),
    (err: Error) => err,
  );
}

/** A tiny xorshift PRNG: the fuzz is reproducible from its seed. */
function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

describe('admin API: malformed requests, credential, origins, hosts', { timeout: 240_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = tmp('state');
  const cert = testCertificate();
  let cp: ControlPlane;
  let server: Server;
  let port: number;
  let browser: Browser;
  /** Every request the admin port answered, with what the browser said about where it came from. */
  const seen: { method: string; url: string; status: number; origin?: string; site?: string }[] = [];
  const credential = (): string => readFileSync(path.join(stateDir, CREDENTIAL_FILE), 'utf8').trim();
  const bearer = (): Record<string, string> => ({ authorization: `Bearer ${credential()}` });
  const raw = (head: string, body?: Parameters<typeof rawHttp>[0]['body']) =>
    rawHttp({ host: ADMIN, port, head, ...(body === undefined ? {} : { body }) });
  const get = (p: string, headers: Record<string, string> = {}): Promise<Reply> =>
    request({ host: ADMIN, port, path: p, headers });
  const post = (p: string, headers: Record<string, string> = {}): Promise<Reply> =>
    request({ host: ADMIN, port, path: p, method: 'POST', headers, timeoutMs: 30_000 });
  const serial = (): string => cp.authority.signerInfo().serial;
  const revision = (): string | undefined => cp.current?.result.revision;
  /** A policy change on disk that only an explicit sync picks up (the plane does not watch). */
  let touches = 0;
  const touchPolicy = (): void => appendFileSync(path.join(policy.dir, 'mesh.yaml'), `\n# touched ${++touches}\n`);

  before(async () => {
    cpSync('examples/mesh', policy.dir, { recursive: true });
    const xdsAddress = `${ADMIN}:${await freePort(ADMIN)}`;
    cp = await startPlane({ configDir: policy.dir, stateDir, watch: false, xdsAddress });
    server = await startStatusServer(cp, ADMIN, 0, { allowedHosts: ['chancery.internal'] });
    port = (server.address() as net.AddressInfo).port;
    server.prependListener('request', (req, res) => {
      res.once('finish', () => seen.push({
        method: req.method ?? '', url: req.url ?? '', status: res.statusCode,
        ...(req.headers.origin ? { origin: req.headers.origin } : {}),
        ...(req.headers['sec-fetch-site'] ? { site: String(req.headers['sec-fetch-site']) } : {}),
      }));
    });
    browser = await launchChromium([`--host-resolver-rules=MAP rebind.test ${ADMIN}`]);
  });

  after(async () => {
    await browser?.close();
    server?.close();
    await cp?.stop();
    policy.cleanup();
    for (const d of [stateDir, cert.dir]) rmSync(d, { recursive: true, force: true });
  });

  test('malformed request targets and encodings get a 400, and the server keeps answering', async () => {
    const malformed = [
      '/proxies/%E0%A4%A', '//[', '/proxies/%', '/proxies/%zz', '/proxies/%C0%AF', '/proxies/%ED%A0%80',
      '/proxies/shop/%E0%A4%A?x=%', 'http://evil.test/status', '*', '/api/explain?from=%E0%A4%A&to=%',
    ];
    for (const target of malformed) {
      const r = await raw(`GET ${target} HTTP/1.1\r\nHost: ${ADMIN}:${port}\r\nConnection: close`);
      assert.equal(r.status, 400, `GET ${target}: ${r.text.slice(0, 300)}`);
    }
    const odd = ['//', '//status', '/%', '/status/..', '/proxies/..%2F..%2Fetc', `/proxies/${'a'.repeat(8000)}`];
    for (const target of odd) {
      const r = await raw(`GET ${target} HTTP/1.1\r\nHost: ${ADMIN}:${port}\r\nConnection: close`);
      assert.ok(isClientError(r.status), `GET ${target.slice(0, 60)}: ${r.text.slice(0, 300)}`);
    }
    assert.equal((await get('/healthz')).status, 200);
  });

  test('methods other than GET/HEAD (and POST for actions) get a 405, unknown ones a 400', async () => {
    for (const m of ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND']) {
      const r = await raw(`${m} /status HTTP/1.1\r\nHost: ${ADMIN}:${port}\r\nConnection: close`);
      assert.equal(r.status, 405, `${m} /status: ${r.text.slice(0, 200)}`);
    }
    assert.equal((await raw(`GET /actions/sync HTTP/1.1\r\nHost: ${ADMIN}\r\nConnection: close`)).status, 405);
    assert.equal((await raw(`POST /status HTTP/1.1\r\nHost: ${ADMIN}\r\nConnection: close`)).status, 405);
    assert.equal((await raw(`CONNECT ${ADMIN}:${port} HTTP/1.1\r\nHost: ${ADMIN}:${port}`)).status, 405);
    assert.equal((await raw(`FOO /status HTTP/1.1\r\nHost: ${ADMIN}\r\nConnection: close`)).status, 400);
    const head = await raw(`HEAD /status HTTP/1.1\r\nHost: ${ADMIN}\r\nConnection: close`);
    assert.equal(head.status, 200);
  });

  test('missing, duplicate and huge headers get a 4xx', async () => {
    assert.equal((await raw('GET /status HTTP/1.1\r\nConnection: close')).status, 400, 'HTTP/1.1 without Host');
    assert.equal((await raw('GET /status HTTP/1.0')).status, 400, 'HTTP/1.0 without Host');
    const twice = await raw(`GET /status HTTP/1.1\r\nHost: ${ADMIN}\r\nHost: evil.test\r\nConnection: close`);
    assert.equal(twice.status, 400, 'two Host headers');
    const huge = await raw(`GET /status HTTP/1.1\r\nHost: ${ADMIN}\r\nX-Big: ${'x'.repeat(70_000)}`);
    assert.equal(huge.status, 431);
    const badName = await raw(`GET /status HTTP/1.1\r\nHost: ${ADMIN}\r\nBad Header: 1\r\nConnection: close`);
    assert.equal(badName.status, 400);
    assert.equal((await get('/healthz')).status, 200);
  });

  test('malformed and huge bodies get a 4xx; a huge body is cut off, not read to the end', async () => {
    const auth = `Authorization: Bearer ${credential()}`;
    const hugeDeclared = await raw(
      `POST /actions/sync HTTP/1.1\r\nHost: ${ADMIN}\r\n${auth}\r\nContent-Length: 1000000000`,
      { chunk: Buffer.alloc(64 * 1024, 120), total: 1e9 },
    );
    assert.equal(hugeDeclared.status, 413);
    const chunk = Buffer.from(`${(64 * 1024).toString(16)}\r\n${'y'.repeat(64 * 1024)}\r\n`);
    const endless = await raw(`GET /status HTTP/1.1\r\nHost: ${ADMIN}\r\nTransfer-Encoding: chunked`, {
      chunk,
      total: 1e9,
    });
    assert.equal(endless.status, 413, 'an endless chunked body');
    const chunked = `POST /actions/sync HTTP/1.1\r\nHost: ${ADMIN}\r\n${auth}\r\nTransfer-Encoding: chunked`;
    const badChunks = await raw(chunked, 'zz\r\nno\r\n');
    assert.equal(badChunks.status, 400);
    assert.equal((await raw(`POST /actions/sync HTTP/1.1\r\nHost: ${ADMIN}\r\nContent-Length: abc`)).status, 400);
    const both = await raw(
      `POST /actions/sync HTTP/1.1\r\nHost: ${ADMIN}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked`, '0\r\n\r\n',
    );
    assert.equal(both.status, 400);
    const junk = await raw(
      `POST /actions/rotate-root HTTP/1.1\r\nHost: ${ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 9`,
      '{"a":[1,',
    );
    assert.ok(isClientError(junk.status), junk.text.slice(0, 200));
    assert.equal((await get('/healthz')).status, 200);
  });

  test('fuzz: random targets, encodings, methods, headers and bodies never get a 5xx or no answer', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? 12);
    const rnd = prng(seed);
    const pieces = [
      'proxies', 'status', 'api', 'explain', 'graph', 'actions', 'sync', 'rotate-root', 'dashboard', 'metrics',
      'healthz', 'shop', 'frontend-1', '%', '%E0', '%A4%A', '%zz', '%00', '%2F', '%2e%2e', '..', '.', '[', ']', '@',
      ':', '?', '=', '&', '~', '%C0%AF', '%ED%A0%80', '%F4%90%80%80', ';', ',', '+', '%20', '%u0041', '\\', '%%',
    ];
    const methods = ['GET', 'GET', 'HEAD', 'POST', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];
    const extras = [
      'Origin: http://evil.test', 'Origin: null', 'Sec-Fetch-Site: cross-site', 'Sec-Fetch-Site: same-site',
      'Sec-Fetch-Mode: navigate', 'Authorization: Bearer junk', 'Authorization: Basic Og==', 'Authorization: Bearer',
      'Content-Type: application/x-www-form-urlencoded', 'Accept-Encoding: gzip', 'Cookie: a=b',
    ];
    const joiners = ['/', '/', '/', '?', '', '%'];
    for (let i = 0; i < 600; i++) {
      const parts = Array.from({ length: 1 + rnd(4) }, () => pieces[rnd(pieces.length)]);
      const target = (rnd(5) === 0 ? '//' : '/') + parts.join(joiners[rnd(joiners.length)]);
      const method = methods[rnd(methods.length)];
      const headers = [`Host: ${rnd(6) === 0 ? 'evil.test' : `${ADMIN}:${port}`}`, 'Connection: close'];
      for (let k = rnd(3); k > 0; k--) headers.push(extras[rnd(extras.length)]);
      const body = rnd(3) === 0 ? 'x'.repeat(rnd(2000)) : '';
      if (body) headers.push(`Content-Length: ${body.length}`);
      const r = await raw(`${method} ${target} HTTP/1.1\r\n${headers.join('\r\n')}`, body);
      const what = `seed ${seed} #${i}: ${method} ${target} -> ${r.text.slice(0, 300)}`;
      assert.ok(r.status >= 200 && r.status < 500, what);
    }
    assert.equal((await get('/healthz')).status, 200);
  });

  test('Host must be an allowed name: loopback names and addresses, the bind address, allowed hosts', async () => {
    const denied = [
      'evil.test', `evil.test:${port}`, `${ADMIN}.evil.test`, `localhost.evil.test:${port}`,
      'chancery.internal.evil.test', `[::2]:${port}`, '10.0.0.1', '0.0.0.0', `127.0.21.2@evil.test`,
    ];
    for (const host of denied) {
      const r = await raw(`GET /status HTTP/1.1\r\nHost: ${host}\r\nConnection: close`);
      assert.ok(r.status === 421 || r.status === 400, `Host: ${host} -> ${r.text.slice(0, 200)}`);
      assert.doesNotMatch(r.text, /"revision"/, `Host: ${host} must not read the status`);
    }
    const allowed = [
      `${ADMIN}:${port}`, ADMIN, `localhost:${port}`, 'LOCALHOST', `127.0.0.1:${port}`, `[::1]:${port}`,
      'chancery.internal', `chancery.internal:${port}`,
    ];
    for (const host of allowed) {
      const r = await raw(`GET /status HTTP/1.1\r\nHost: ${host}\r\nConnection: close`);
      assert.equal(r.status, 200, `Host: ${host} -> ${r.text.slice(0, 200)}`);
    }
  });

  test('DNS rebinding in a real browser: a page whose name resolves to the admin address cannot read it', async () => {
    const page = await browser.newPage();
    try {
      for (const p of ['/status', '/dashboard', '/api/graph']) {
        const res = await page.goto(`http://rebind.test:${port}${p}`);
        assert.equal(res?.status(), 421, `http://rebind.test:${port}${p}`);
      }
      assert.doesNotMatch((await page.content()) ?? '', /"revision"|Service graph/);
    } finally {
      await page.close();
    }
  });

  test('actions need the admin credential (generated in the state directory, mode 0600)', async () => {
    const file = path.join(stateDir, CREDENTIAL_FILE);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(credential().length >= 43, 'at least 256 bits');
    touchPolicy();
    const [s0, r0] = [serial(), revision()];
    const basic = `Basic ${Buffer.from(`:${credential()}`).toString('base64')}`;
    const wrong = ['', `Bearer ${credential()}x`, 'Bearer junk', basic];
    for (const authorization of wrong) {
      for (const action of ['/actions/rotate-root', '/actions/sync']) {
        const r = await post(action, authorization ? { authorization } : {});
        assert.equal(r.status, 401, `${action} with "${authorization.slice(0, 12)}": ${r.body}`);
        assert.match(String(r.headers['www-authenticate']), /^Bearer/);
      }
    }
    assert.equal(serial(), s0, 'no rotation without the credential');
    assert.equal(revision(), r0, 'no sync without the credential');
    assert.equal((await post('/actions/sync', bearer())).status, 200);
    assert.notEqual(revision(), r0, 'an authorized sync reads the change');
    assert.equal((await post('/actions/rotate-root', bearer())).status, 200);
    assert.notEqual(serial(), s0, 'an authorized rotation rotates');
  });

  test('cross-origin requests are refused even with the credential; navigating to the dashboard is not', async () => {
    touchPolicy();
    const [s0, r0] = [serial(), revision()];
    const crossOrigin: Record<string, string>[] = [
      { origin: `http://${ATTACKER}:8080` }, { origin: 'null' }, { origin: `http://${ADMIN}:${port + 1}` },
      { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' },
    ];
    for (const h of crossOrigin) {
      for (const action of ['/actions/rotate-root', '/actions/sync']) {
        const r = await post(action, { ...bearer(), ...h });
        assert.equal(r.status, 403, `${action} ${JSON.stringify(h)}: ${r.body}`);
      }
      assert.equal((await get('/status', h)).status, 403, `GET /status ${JSON.stringify(h)}`);
    }
    assert.equal(serial(), s0);
    assert.equal(revision(), r0);
    const nav = await get('/dashboard', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' });
    assert.equal(nav.status, 200, 'a link from elsewhere opens the dashboard (it holds no data)');
    const sameOrigin = { origin: `http://${ADMIN}:${port}`, 'sec-fetch-site': 'same-origin' };
    const same = await post('/actions/sync', { ...bearer(), ...sameOrigin });
    assert.equal(same.status, 200);
  });

  test('a page on another origin (real browser) cannot rotate the root or trigger a sync', async () => {
    const attackerServers: Server[] = [];
    const page = await browser.newPage();
    try {
      // Another loopback address (cross-site), and another port of the admin's own address (same-site).
      for (const host of [ATTACKER, ADMIN]) {
        const attacker = http.createServer((_req, res) => {
          res.writeHead(200, { 'content-type': 'text/html' });
          res.end(attackPage(`http://${ADMIN}:${port}`));
        });
        attackerServers.push(attacker);
        await new Promise<void>((r) => attacker.listen(0, host, r));
        const origin = `http://${host}:${(attacker.address() as net.AddressInfo).port}`;
        touchPolicy();
        const [s0, r0] = [serial(), revision()];
        await page.goto(`${origin}/attack`);
        const attempts = await waitFor(() => {
          const mine = seen.filter((s) => s.method === 'POST' && s.origin === origin);
          return mine.length >= 3 && mine;
        }, { timeoutMs: 20_000, what: `the attack from ${origin} to reach the admin port` });
        assert.deepEqual(attempts.map((a) => a.status), [403, 403, 403], JSON.stringify(attempts));
        const site = host === ADMIN ? 'same-site' : 'cross-site';
        assert.ok(attempts.every((a) => a.site === site), JSON.stringify(attempts));
        assert.equal(serial(), s0, `no rotation from ${origin}`);
        assert.equal(revision(), r0, `no sync from ${origin}`);
      }
    } finally {
      await page.close();
      for (const s of attackerServers) s.close();
    }
  });

  test('reads stay on loopback: an address beyond loopback is refused without TLS', async () => {
    const { isLoopbackHost } = await import('../../src/admin/hosts.js');
    for (const h of ['127.0.21.9', '127.0.0.1', '::1', 'localhost']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '10.1.2.3', '192.0.2.1', 'chancery.example', '::ffff:10.0.0.1']) {
      assert.equal(isLoopbackHost(h), false, h);
    }
    // 192.0.2.1 (TEST-NET-1) is on no interface here: whatever happens, nothing beyond loopback gets bound.
    const err = await startFailure(startStatusServer(cp, '192.0.2.1', 0));
    assert.ok(err instanceof Error && /TLS/.test(err.message), String(err));
  });

  test('beyond loopback: TLS and the credential for reads; the dashboard (real browser) asks for it', async () => {
    const files = { certFile: cert.certFile, keyFile: cert.keyFile };
    const tls = await startStatusServer(cp, TLS_HOST, 0, { tls: files, requireCredentialForReads: true });
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const tlsPort = (tls.address() as net.AddressInfo).port;
      const ca = readFileSync(cert.certFile, 'utf8');
      const at = (p: string, headers: Record<string, string> = {}) =>
        httpsRequest({ host: TLS_HOST, port: tlsPort, path: p, ca, headers });
      for (const p of ['/status', '/api/graph', '/metrics', '/proxies/shop/frontend-1', '/api/explain?from=a&to=b']) {
        assert.equal((await at(p)).status, 401, `${p} without the credential`);
      }
      assert.equal((await at('/status', bearer())).status, 200);
      assert.equal((await at('/healthz')).status, 200, 'liveness needs nothing');
      const page = await context.newPage();
      await page.goto(`https://${TLS_HOST}:${tlsPort}/dashboard`);
      await page.waitForSelector('#login', { state: 'visible' });
      await page.fill('#login input', credential());
      await page.click('#login button');
      await page.waitForSelector('#graph g.node');
      await page.selectOption('#from', 'shop/frontend-1');
      await page.fill('#to', 'backend.shop.svc');
      await page.fill('#path', '/admin/users');
      await page.click('#explain button');
      // The placeholder says "ALLOW or DENY" too: wait for an answer, not for the word.
      const answered = () => /^(ALLOW|DENY) \(|^error:/.test(document.getElementById('answer')?.textContent ?? '');
      await page.waitForFunction(answered);
      assert.match((await page.textContent('#answer')) ?? '', /^DENY \(403\)/);
    } finally {
      await context.close();
      tls.close();
    }
  });

  test('the credential file is reused across restarts; a weak or group-readable one is refused, named', async () => {
    const before = credential();
    const again = await startStatusServer(cp, ADMIN, 0);
    again.close();
    assert.equal(credential(), before);
    const planeAt = (dir: string) => ({ settings: { ...cp.settings, stateDir: dir } }) as unknown as ControlPlane;
    const names = (err: Error | 'started', dir: string) =>
      err instanceof Error && err.message.includes(path.join(dir, CREDENTIAL_FILE));
    const fresh = tmp('fresh');
    assert.equal(await startFailure(startStatusServer(planeAt(fresh), ADMIN, 0)), 'started');
    assert.deepEqual(readdirSync(fresh), [CREDENTIAL_FILE], 'written atomically: no temporary file left');
    assert.equal(statSync(path.join(fresh, CREDENTIAL_FILE)).mode & 0o777, 0o600);
    const weak = tmp('weak');
    writeFileSync(path.join(weak, CREDENTIAL_FILE), 'abc\n', { mode: 0o600 });
    const weakErr = await startFailure(startStatusServer(planeAt(weak), ADMIN, 0));
    assert.ok(names(weakErr, weak), String(weakErr));
    const loose = tmp('loose');
    writeFileSync(path.join(loose, CREDENTIAL_FILE), `${before}\n`);
    chmodSync(path.join(loose, CREDENTIAL_FILE), 0o644);
    const looseErr = await startFailure(startStatusServer(planeAt(loose), ADMIN, 0));
    assert.ok(names(looseErr, loose), String(looseErr));
    for (const d of [fresh, weak, loose]) rmSync(d, { recursive: true, force: true });
  });
});

/** What an attacker's page does: no-cors fetches (a "simple" POST needs no preflight) and an auto-submitted form. */
function attackPage(target: string): string {
  return `<!doctype html><title>attack</title><iframe name="sink"></iframe>
<form method="POST" action="${target}/actions/rotate-root" target="sink"><input name="a" value="b"></form>
<script>
Promise.allSettled([
  fetch('${target}/actions/rotate-root', { method: 'POST', mode: 'no-cors' }),
  fetch('${target}/actions/sync', { method: 'POST', mode: 'no-cors', body: 'x' }),
]).then(() => document.forms[0].submit());
</script>`;
}

interface Serve {
  proc: ChildProcess;
  stderr: () => string;
  stop: () => Promise<void>;
}

/** Runs `chancery serve` as a user would, and resolves once its status API listens. */
function startServe(args: string[], cwd: string): Promise<Serve> {
  const proc = spawn(process.execPath, [BIN, 'serve', ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const serve: Serve = {
    proc,
    stderr: () => err,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
  return new Promise((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      err += d;
      if (err.includes('status API listening')) resolve(serve);
    });
    proc.once('exit', (code) => reject(new Error(`chancery serve exited (${code}) before listening:\n${err}`)));
  });
}

interface CliRun {
  code: number;
  out: string;
  err: string;
}

function runCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const o = { cwd, env: { ...process.env, ...env }, timeout: 60_000 };
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], o, (e, out, err) => {
      resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out, err });
    });
  });
}

const canConnect = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, host, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });

describe('chancery serve and the CLI', { timeout: 180_000 }, () => {
  const cwd = tmp('cwd');
  const elsewhere = tmp('elsewhere');
  const cert = testCertificate();
  let serve: Serve;
  let xdsPort: number;
  let adminPort: number;
  const adminUrl = (): string => `http://${SERVE}:${adminPort}`;

  before(async () => {
    cpSync('examples/mesh', path.join(cwd, 'mesh'), { recursive: true });
    [xdsPort, adminPort] = [await freePort(SERVE), await freePort(SERVE)];
    const args = ['--config', 'mesh', '--xds-host', SERVE, '--xds-port', String(xdsPort)];
    serve = await startServe([...args, '--admin-host', SERVE, '--admin-port', String(adminPort)], cwd);
  });

  after(async () => {
    await serve?.stop();
    for (const d of [cwd, elsewhere, cert.dir]) rmSync(d, { recursive: true, force: true });
  });

  test('one malformed request does not take the process down, xDS included', async () => {
    for (const target of ['/proxies/%E0%A4%A', '//[']) {
      const head = `GET ${target} HTTP/1.1\r\nHost: ${SERVE}\r\nConnection: close`;
      const r = await rawHttp({ host: SERVE, port: adminPort, head });
      assert.equal(r.status, 400, `GET ${target}: ${r.text.slice(0, 200)}\n${serve.stderr().slice(-2000)}`);
    }
    assert.equal(serve.proc.exitCode, null, 'still running');
    assert.equal((await request({ host: SERVE, port: adminPort, path: '/healthz' })).status, 200);
    assert.ok(await canConnect(SERVE, xdsPort), 'xDS still accepts connections');
  });

  test('the credential is created on first start (0600); status and rotate-root use it with no new flags', async () => {
    const file = path.join(cwd, '.chancery', CREDENTIAL_FILE);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const status = await runCli(['status', '--admin', adminUrl()], cwd);
    assert.equal(status.code, 0, status.err);
    assert.match(status.out, /serving: dir:/);
    const rotate = await runCli(['rotate-root', '--admin', adminUrl()], cwd);
    assert.equal(rotate.code, 0, rotate.err);
    assert.match(rotate.out, /root rotated/);
    const stranger = await runCli(['rotate-root', '--admin', adminUrl()], elsewhere);
    assert.equal(stranger.code, 1, 'no credential where it looks: refused');
    assert.match(stranger.err, /admin\.token/);
  });

  test('serve refuses an admin address beyond loopback without TLS, before binding anything', async () => {
    const xds = ['--xds-host', SERVE, '--xds-port', String(await freePort(SERVE))];
    const args = ['--config', 'mesh', ...xds, '--state-dir', 'x'];
    const r = await runCli(['serve', ...args, '--admin-host', '192.0.2.1', '--admin-port', '0'], cwd);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--admin-tls-cert/);
  });

  test('serve with --admin-tls-cert/--admin-tls-key and --admin-allowed-host; chancery status over https', async () => {
    const [tlsPort, tlsXds] = [await freePort(SERVE_TLS), await freePort(SERVE_TLS)];
    const args = [
      '--config', 'mesh', '--state-dir', 'tls', '--xds-host', SERVE_TLS, '--xds-port', String(tlsXds),
      '--admin-host', SERVE_TLS, '--admin-port', String(tlsPort), '--admin-allowed-host', 'chancery.test',
      '--admin-tls-cert', cert.certFile, '--admin-tls-key', cert.keyFile,
    ];
    const tlsServe = await startServe(args, cwd);
    try {
      const ca = readFileSync(cert.certFile, 'utf8');
      const at = (host: string) =>
        httpsRequest({ host: SERVE_TLS, port: tlsPort, path: '/status', ca, headers: { host } });
      assert.equal((await at('chancery.test')).status, 200);
      assert.equal((await at('evil.test')).status, 421);
      const status = await runCli(['status', '--admin', `https://${SERVE_TLS}:${tlsPort}`, '--state-dir', 'tls'], cwd, {
        NODE_EXTRA_CA_CERTS: cert.certFile,
      });
      assert.equal(status.code, 0, status.err);
    } finally {
      await tlsServe.stop();
    }
  });
});
