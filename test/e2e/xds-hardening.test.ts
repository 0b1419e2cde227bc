/**
 * The xDS server under attack and churn, with real Envoy sidecars and with the test xDS client:
 * - a flood of streams without a valid token does not cost real proxies a single connection attempt;
 * - a second stream with a proxy's node id replaces the first, and /status shows the live one;
 * - a removed workload's stream is closed, its certificate is not renewed, its old token stays dead when it returns;
 * - tokens without `exp`, with `exp` in 2999 or `iat` in the future are refused;
 * - a NACK's message is cut to 4 KiB before logs, status and history, and a NACK loop is recorded once.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createSecretKey } from 'node:crypto';
import { SignJWT } from 'jose';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { runBootstrap } from '../../src/cli/bootstrap.js';
import { createLogger } from '../../src/app/logger.js';
import { statusDocument } from '../../src/admin/status-server.js';
import { startEnvoy, type EnvoyProcess } from '../support/envoy.js';
import { waitFor } from '../support/http.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { docs, PolicyDir, serviceEntry, workloadEntry } from '../support/mesh-fixture.js';
import { T, XdsTestClient } from '../support/xds-client.js';
import { startFlood, type FloodCounts } from '../support/xds-flood.js';

const ip = (n: number) => `127.0.23.${n}`;
/** What a NACK message is cut to (src/server/wire.ts MAX_NACK_MESSAGE_BYTES), plus room for the marker. */
const NACK_BOUND = 4096 + 64;

/** `n` workloads `<prefix>-1..n` of app `<prefix>` (service account `<prefix>-<i>`), from 127.0.23.<first>. */
function workloads(prefix: string, n: number, first: number): string {
  const out = [serviceEntry(prefix, 'hx')];
  for (let i = 1; i <= n; i++) {
    out.push(workloadEntry(`${prefix}-${i}`, 'hx', prefix, ip(first + i - 1), `${prefix}-${i}`));
  }
  return docs(...out);
}

const meshCerts = (ttl: string, rotateAt: number) => `apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec:
  certificates: { ttl: ${ttl}, rotateAt: ${rotateAt} }
`;

/** One of Envoy's stats by its full name. */
const stat = async (e: EnvoyProcess, name: string) => (await e.stats(`^${name.replaceAll('.', '\\.')}$`))[name];
/** How many ADS streams Envoy opened to the control plane (each is one request on its xDS cluster). */
const xdsAttempts = (e: EnvoyProcess) => stat(e, 'cluster.chancery-xds.upstream_rq_total');
const connectedState = (e: EnvoyProcess) => stat(e, 'control_plane.connected_state');

/** The token embedded in a bootstrap written by startSidecar. */
function bootstrapToken(cp: ControlPlane, id: string): string {
  const b = JSON.parse(readFileSync(`${cp.settings.stateDir}/bootstrap-${id.replace('/', '.')}.json`, 'utf8'));
  const header: string = b.dynamic_resources.ads_config.grpc_services[0].initial_metadata[0].value;
  return header.slice('Bearer '.length);
}

describe('admission after authentication, with real Envoy', { timeout: 120_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  const lines: string[] = [];
  let cp: ControlPlane;
  const envoys: EnvoyProcess[] = [];

  before(async () => {
    policy.write('mesh.yaml', workloads('adm', 8, 11));
    cp = await startPlane({
      configDir: policy.dir,
      stateDir,
      xdsPlaintextAddress: '127.0.0.1:0',
      maxNewStreamsPerSecond: 10,
      logger: createLogger('warn', (l) => lines.push(l)),
    });
  });
  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await cp?.stop();
    policy.cleanup();
    for (const d of [stateDir, `${stateDir}-bootstrap`]) rmSync(d, { recursive: true, force: true });
  });

  test('~600 streams/s with no valid token: 8 real Envoys connect at first attempt; refusals summed up', async () => {
    // The signature's first character changed (the last one's padding bits may not count).
    const flip = (_m: string, c: string, r: string) => `.${c === 'A' ? 'B' : 'A'}${r}`;
    const forged = (await cp.issueToken('hx/adm-1')).replace(/\.([^.])([^.]*)$/, flip);
    // Bootstraps first: while the flood runs, this process does nothing but serve (as a control plane would).
    const bootstraps: [string, object][] = [];
    for (let i = 1; i <= 8; i++) {
      const id = `hx/adm-${i}`;
      const out = `${stateDir}/bootstrap-hx.adm-${i}.json`;
      const args = ['--config', policy.dir, '--workload', id, '--out', out, '--xds-address', cp.settings.xdsAddress];
      assert.equal(await runBootstrap([...args, '--state-dir', stateDir]), 0);
      bootstraps.push([id, JSON.parse(readFileSync(out, 'utf8'))]);
    }
    const t0 = Date.now();
    const f = startFlood(cp.xdsPlaintextPort, 600, forged);
    const refused = (c: FloodCounts) => Object.values(c.ended).reduce((a, b) => a + b, 0);
    let during: FloodCounts;
    try {
      await waitFor(async () => refused(await f.counts()) >= 300, {
        timeoutMs: 10_000,
        what: 'the flood to be under way',
      });
      envoys.push(...(await Promise.all(bootstraps.map(([id, config]) => startEnvoy({ name: id, config })))));
      await Promise.all(envoys.map((e) => e.waitReady(60_000)));
      const attempts = await Promise.all(envoys.map(xdsAttempts));
      assert.deepEqual(
        attempts,
        envoys.map(() => 1),
        'ADS streams each Envoy opened: one, its first was admitted',
      );
      assert.deepEqual(
        await Promise.all(envoys.map(connectedState)),
        envoys.map(() => 1),
      );
    } finally {
      during = await f.stop();
    }
    const rate = Math.round(during.opened / (during.elapsedMs / 1000));
    console.log(`# ${refused(during)} streams with no valid token refused (${rate}/s) ${JSON.stringify(during.ended)}`);
    assert.ok(rate >= 400, `the flood ran at about 600 streams/s (${rate}/s)`);
    assert.equal(during.ended.OK ?? 0, 0, 'no flood stream was served');
    // Bounded logging: one line per kind of refusal, then one summary with the counts.
    cp.ads.refusals.flush();
    const refusedLines = lines.map((l) => JSON.parse(l)).filter((l) => /refused/.test(l.msg));
    const intervals = 1 + Math.ceil((Date.now() - t0) / cp.ads.refusals.intervalMs);
    // Per interval: the first refusal of each kind (no token, forged token, over budget), then one summary.
    const what = refusedLines.map((l) => l.msg).join('; ');
    assert.ok(refusedLines.length <= 4 * intervals, `refusals at a bounded rate (${refusedLines.length}): ${what}`);
    const summary = refusedLines.find((l) => l.msg === 'ads streams refused (summary)');
    assert.ok(summary, 'a summary line');
    const counted = Object.values(summary.refused as Record<string, number>).reduce((a, b) => a + b, 0);
    assert.ok(counted >= 300, `the summary counts the refusals (${counted})`);
    assert.equal(cp.ads.counters.streamsRejected, 0, 'the new-stream budget was never exhausted by the flood');
  });
});

describe('one live stream per node id, with real Envoy', { timeout: 60_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  let cp: ControlPlane;
  let envoy: EnvoyProcess;
  const ID = 'hx/one-1';

  before(async () => {
    policy.write('mesh.yaml', workloads('one', 1, 31));
    cp = await startPlane({ configDir: policy.dir, stateDir, xdsPlaintextAddress: '127.0.0.1:0' });
    envoy = await startSidecar(cp, ID);
  });
  after(async () => {
    await envoy?.stop();
    await cp?.stop();
    policy.cleanup();
    for (const d of [stateDir, `${stateDir}-bootstrap`]) rmSync(d, { recursive: true, force: true });
  });

  type Shown = { proxies: { id: string; connected: boolean; userAgent: string }[] };
  const shown = () => (statusDocument(cp) as Shown).proxies.find((p) => p.id === ID);
  const envoyShown = () => shown()?.connected && shown()?.userAgent === 'envoy';

  test('a second stream with the same node id replaces the first; /status shows the live one', async () => {
    await waitFor(envoyShown, { timeoutMs: 5000, what: 'Envoy shown connected' });
    // Someone else with this workload's token (a copy of its bootstrap, or Envoy's own hot restart).
    const c = new XdsTestClient(cp.xdsPlaintextPort, 'delta', bootstrapToken(cp, ID));
    try {
      c.send({ node: { id: ID, cluster: 'hx' }, type_url: T.CDS });
      await c.next(5000);
      assert.equal(shown()?.userAgent, 'unknown', 'the newest stream is the one shown');
    } finally {
      c.close();
    }
    // The replaced Envoy reconnects and is the live stream again.
    await waitFor(envoyShown, { timeoutMs: 15_000, what: 'the real Envoy shown connected again' });
    await waitFor(async () => (await connectedState(envoy)) === 1, { timeoutMs: 5000, what: 'Envoy connected' });
    assert.equal(await xdsAttempts(envoy), 2, 'Envoy reconnected once: its first stream was closed as replaced');
    assert.ok(cp.ads.counters.replaced >= 1, 'replaced, not kept side by side');
    assert.ok(cp.ads.heldVersions(ID, T.CDS as never)?.size, 'what Envoy holds is read from its live stream');
  });
});

describe('a removed workload, with real Envoy', { timeout: 120_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  const lines: string[] = [];
  let cp: ControlPlane;
  const envoys = new Map<string, EnvoyProcess>();
  const KEEP = 'hx/keep-1';
  const GONE = 'hx/gone-1';

  const write = (withGone: boolean) => {
    const gone = withGone ? [workloads('gone', 1, 42)] : [];
    policy.write('mesh.yaml', docs(meshCerts('60s', 0.1), workloads('keep', 1, 41), ...gone));
  };

  before(async () => {
    write(true);
    cp = await startPlane({ configDir: policy.dir, stateDir, logger: createLogger('info', (l) => lines.push(l)) });
    for (const id of [KEEP, GONE]) envoys.set(id, await startSidecar(cp, id));
  });
  after(async () => {
    await Promise.all([...envoys.values()].map((e) => e.stop()));
    await cp?.stop();
    policy.cleanup();
    for (const d of [stateDir, `${stateDir}-bootstrap`]) rmSync(d, { recursive: true, force: true });
  });

  /** The serial of the workload certificate Envoy holds (from its /certs). */
  const serial = async (e: EnvoyProcess): Promise<string | undefined> => {
    const certs = JSON.parse(await e.adminGet('/certs')).certificates ?? [];
    const isWorkload = (c: any) => (c.subject_alt_names ?? []).some((s: any) => s.uri?.includes('/sa/'));
    return certs.flatMap((c: any) => c.cert_chain ?? []).find(isWorkload)?.serial_number;
  };

  test('its stream is closed, its certificate not renewed, its old token stays dead when it comes back', async () => {
    const gone = envoys.get(GONE)!;
    const keep = envoys.get(KEEP)!;
    const goneSerial = await waitFor(() => serial(gone), { timeoutMs: 5000, what: "gone-1's certificate" });
    const keepSerial = await waitFor(() => serial(keep), { timeoutMs: 5000, what: "keep-1's certificate" });
    const before = cp.current!.result.revision;
    write(false);
    await waitFor(() => cp.current!.result.revision !== before, { timeoutMs: 10_000, what: 'the removal accepted' });
    const lost = async () => (await connectedState(gone)) === 0;
    await waitFor(lost, { timeoutMs: 5000, what: "gone-1's Envoy to lose its xDS stream" });
    // Status shows a removed workload's proxy as disconnected, or not at all once it is forgotten.
    const shown = (statusDocument(cp) as any).proxies.find((p: any) => p.id === GONE);
    assert.ok(!shown || shown.connected === false, JSON.stringify(shown));
    assert.ok(!cp.svids.status().some((c) => c.identity.endsWith('/sa/gone-1')), 'no certificate is kept for it');
    // keep-1's certificate rotates (about every 6 s); gone-1's does not, and it stays disconnected.
    const rotated = async () => (await serial(keep)) !== keepSerial;
    await waitFor(rotated, { timeoutMs: 20_000, what: "keep-1's certificate to rotate" });
    assert.equal(await serial(gone), goneSerial, "gone-1's certificate was not renewed");
    assert.equal(await connectedState(gone), 0);

    // It comes back: a new bootstrap (new token) works; the old one does not.
    await gone.stop();
    envoys.delete(GONE);
    const back = cp.current!.result.revision;
    write(true);
    await waitFor(() => cp.current!.result.revision !== back, { timeoutMs: 10_000, what: 'the workload to be back' });
    const oldBootstrap = JSON.parse(readFileSync(`${stateDir}/bootstrap-hx.gone-1.json`, 'utf8'));
    const refusedBefore = cp.ads.counters.unauthenticated;
    const old = startEnvoy('gone-1-old-token', oldBootstrap);
    envoys.set('old', old);
    await old.waitAdmin();
    const tried = () => cp.ads.counters.unauthenticated > refusedBefore;
    await waitFor(tried, { timeoutMs: 10_000, what: 'the old token to be tried' });
    assert.equal(await connectedState(old), 0, 'the old token is refused');
    assert.ok(
      lines.some((l) => /token issued before its workload was removed/.test(l)),
      'logged with the reason',
    );
    await old.stop();
    envoys.delete('old');
    const fresh = await startSidecar(cp, GONE);
    envoys.set(GONE, fresh);
    assert.equal(await connectedState(fresh), 1, 'a token issued after the removal works');
  });
});

describe('token claims and NACK bounds, with the test xDS client', () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  const lines: string[] = [];
  let cp: ControlPlane;

  const plane = () =>
    startPlane({
      configDir: policy.dir,
      stateDir,
      xdsPlaintextAddress: '127.0.0.1:0',
      maxNewStreamsPerSecond: 1000,
      logger: createLogger('info', (l) => lines.push(l)),
    });

  before(async () => {
    policy.write('mesh.yaml', workloads('tok', 2, 51));
    cp = await plane();
  });
  after(async () => {
    await cp?.stop();
    policy.cleanup();
    for (const d of [stateDir, `${stateDir}-bootstrap`]) rmSync(d, { recursive: true, force: true });
  });

  /** A token signed with the control plane's own key, with claims as given (so only the claims are wrong). */
  const signed = (claims: { exp?: number; iat?: number }) => {
    const key = createSecretKey(Buffer.from(readFileSync(`${stateDir}/xds-token.key`, 'utf8').trim(), 'base64'));
    let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('chancery').setAudience('chancery-xds');
    jwt = jwt.setSubject('hx/tok-1');
    if (claims.iat !== undefined) jwt = jwt.setIssuedAt(claims.iat);
    if (claims.exp !== undefined) jwt = jwt.setExpirationTime(claims.exp);
    return jwt.sign(key);
  };

  const outcome = async (token: string): Promise<string> => {
    const c = new XdsTestClient(cp.xdsPlaintextPort, 'delta', token);
    try {
      c.send({ node: { id: 'hx/tok-1', cluster: 'hx' }, type_url: T.CDS });
      return await Promise.race([c.next(5000).then(() => 'served'), c.ended(5000).then((s) => grpc.status[s.code])]);
    } finally {
      c.close();
    }
  };

  test('tokens without exp, with exp in 2999 or iat in the future are refused; a proper one is served', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string, string][] = [
      ['no exp', await signed({ iat: now }), 'UNAUTHENTICATED'],
      ['exp in 2999', await signed({ iat: now, exp: Date.UTC(2999, 0, 1) / 1000 }), 'UNAUTHENTICATED'],
      ['iat an hour in the future', await signed({ iat: now + 3600, exp: now + 7200 }), 'UNAUTHENTICATED'],
      ['no iat', await signed({ exp: now + 3600 }), 'UNAUTHENTICATED'],
      ['iat 30 s ahead (clock skew), a day long', await signed({ iat: now + 30, exp: now + 86_400 }), 'served'],
      ['issued by the control plane', await cp.issueToken('hx/tok-1'), 'served'],
    ];
    const got = [];
    for (const [what, token] of cases) got.push([what, await outcome(token)]);
    assert.deepEqual(
      got,
      cases.map(([what, , want]) => [what, want]),
    );
    await assert.rejects(cp.tokens.issue('hx/tok-1', 2 * 365 * 86_400), /lifetime/);
  });

  test('chancery bootstrap --token-ttl refuses more than a year', async () => {
    const dir = `${stateDir}-bootstrap`;
    const errors: string[] = [];
    const orig = console.error;
    console.error = (...a: unknown[]) => errors.push(a.join(' '));
    try {
      const args = ['--config', 'examples/mesh', '--workload', 'shop/frontend-1', '--plaintext'];
      args.push('--state-dir', dir, '--out', `${dir}/b.json`);
      assert.equal(await runBootstrap([...args, '--token-ttl', '8761h']), 2);
      assert.match(errors.join('\n'), /--token-ttl may be at most 8760h/);
      assert.ok(!existsSync(`${dir}/b.json`));
      assert.equal(await runBootstrap([...args, '--token-ttl', '8760h']), 0);
    } finally {
      console.error = orig;
    }
  });

  test('tokens of a workload removed while the control plane was stopped stay invalid when it comes back', async () => {
    const old = await cp.issueToken('hx/tok-2');
    await cp.stop();
    policy.write('mesh.yaml', workloads('tok', 1, 51));
    cp = await plane();
    policy.write('mesh.yaml', workloads('tok', 2, 51));
    await cp.reload();
    assert.ok(cp.current!.result.proxies.has('hx/tok-2'), 'back in the configuration');
    const c = new XdsTestClient(cp.xdsPlaintextPort, 'delta', old);
    try {
      c.send({ node: { id: 'hx/tok-2', cluster: 'hx' }, type_url: T.CDS });
      assert.equal((await c.ended(5000)).code, grpc.status.UNAUTHENTICATED, 'the old token is refused');
    } finally {
      c.close();
    }
    const fresh = new XdsTestClient(cp.xdsPlaintextPort, 'delta', await cp.issueToken('hx/tok-2'));
    try {
      fresh.send({ node: { id: 'hx/tok-2', cluster: 'hx' }, type_url: T.CDS });
      assert.equal((await fresh.next(5000)).typeUrl, T.CDS, 'a new token is served');
    } finally {
      fresh.close();
    }
  });

  test('a NACK message is cut to 4 KiB (marked) for logs, status and history; a NACK loop is logged once', async () => {
    const token = await cp.issueToken('hx/tok-1');
    const huge = 'x'.repeat(3 * 1024 * 1024);
    const revisionsBefore = cp.history.read().filter((e) => e.kind === 'revision').length;
    for (let i = 0; i < 20; i++) {
      const c = new XdsTestClient(cp.xdsPlaintextPort, 'delta', token);
      try {
        c.send({ node: { id: 'hx/tok-1', cluster: 'hx' }, type_url: T.CDS });
        const d = await c.next(5000);
        c.send({ type_url: T.CDS, response_nonce: d.nonce, error_detail: { code: 3, message: huge } });
        const recorded = () => cp.ads.registry.get('hx/tok-1')?.types.CDS?.lastNack?.nonce === d.nonce;
        await waitFor(recorded, { timeoutMs: 5000, what: 'the NACK to be recorded' });
      } finally {
        c.close();
      }
    }
    const nack = cp.ads.registry.get('hx/tok-1')!.types.CDS.lastNack!;
    assert.ok(Buffer.byteLength(nack.message) <= NACK_BOUND, `status: ${Buffer.byteLength(nack.message)} bytes`);
    assert.match(nack.message, /truncated: 3145728 bytes\]$/);
    cp.history.flush();
    const entries = cp.history.read();
    const nacks = entries.filter((e) => e.kind === 'nack' && e.proxy === 'hx/tok-1');
    assert.equal(nacks.length, 1, 'the same rejection by the same proxy is recorded once');
    assert.ok(nacks.every((e) => e.kind === 'nack' && Buffer.byteLength(e.message) <= NACK_BOUND));
    assert.equal(entries.filter((e) => e.kind === 'revision').length, revisionsBefore, 'revision records all kept');
    const logged = lines.filter((l) => l.includes('NACK'));
    assert.equal(logged.length, 1, 'logged once');
    assert.ok(Math.max(...lines.map((l) => l.length)) < 16 * 1024, 'no log line carries the whole message');
  });
});
