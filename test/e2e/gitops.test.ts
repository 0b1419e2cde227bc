/**
 * GitOps end to end: the control plane follows a real Git repository created here. A bad commit is rejected with its
 * file:line diagnostics in status while traffic through real Envoy sidecars is unaffected; the next good commit
 * converges on every proxy with its SHA visible in `chancery status`; after a restart whose newest commit is bad,
 * the last good commit is served again.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { startStatusServer, statusDocument } from '../../src/admin/status-server.js';
import { runHistory } from '../../src/cli/history.js';
import { formatStatus } from '../../src/cli/status.js';
import { startApp, type App } from '../support/apps.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { request, waitFor } from '../support/http.js';
import { callerCallee, PolicyDir } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';

const IP = { a: '127.0.7.1', b: '127.0.7.2' };
const APP_PORT = 19701;

const mesh = (denyPath: string) => `${callerCallee({ ns: 'shop', a: IP.a, b: IP.b, appPort: APP_PORT })}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: b-allow, namespace: shop }
spec:
  selector: { matchLabels: { app: b } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/shop/sa/a"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: b-deny, namespace: shop }
spec:
  selector: { matchLabels: { app: b } }
  action: DENY
  rules:
    - to: [{ operation: { paths: ["${denyPath}"] } }]
`;

const BROKEN = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: a, namespace: shop }
spec:
  workloadSelector: { labels: { app: a } }
  egress:
    - hosts: ["./nothing.shop.svc"]
      portt: 1
`;

/** Runs a CLI command in-process and captures what it prints. */
async function cli(fn: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    const code = await fn(argv);
    return { code, out: lines.join('\n') };
  } finally {
    console.log = orig;
  }
}

describe('GitOps: following a Git repository', { timeout: 180_000 }, () => {
  const repo = new PolicyDir();
  const stateDir = `${repo.dir}-state`;
  let cp: ControlPlane;
  let xdsPort: number;
  let app: App;
  const envoys: EnvoyProcess[] = [];
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo.dir, encoding: 'utf8' }).trim();
  const commit = (files: Record<string, string | null>, message: string): string => {
    for (const [f, text] of Object.entries(files)) {
      if (text === null) git('rm', '-q', f);
      else {
        mkdirSync(`${repo.dir}/mesh`, { recursive: true });
        writeFileSync(`${repo.dir}/${f}`, text);
        git('add', f);
      }
    }
    git('commit', '-q', '-m', message);
    return git('rev-parse', 'HEAD');
  };
  const newPlane = (): Promise<ControlPlane> =>
    startPlane({ configDir: `${repo.dir}/mesh`, stateDir, xdsAddress: `127.0.0.1:${xdsPort}`, git: { repo: repo.dir, branch: 'main', subdir: 'mesh', pollMs: 200 } });
  const callB = (path: string) => request({ host: IP.a, port: 15001, path: `http://b.shop.svc${path}`, headers: { host: 'b.shop.svc' } });
  let good1: string;
  /** The control plane's Prometheus metrics, from its admin endpoint. */
  const scrape = async (): Promise<string> => {
    const server = await startStatusServer(cp, '127.0.0.1', 0);
    try {
      const port = (server.address() as { port: number }).port;
      return (await request({ host: '127.0.0.1', port, path: '/metrics' })).body;
    } finally {
      server.close();
    }
  };

  before(async () => {
    xdsPort = await freePort();
    git('init', '-q', '-b', 'main');
    git('config', 'user.email', 'test@example.com');
    git('config', 'user.name', 'test');
    writeFileSync(`${repo.dir}/README.md`, 'not a policy\n');
    git('add', 'README.md');
    good1 = commit({ 'mesh/shop.yaml': mesh('/blocked-1') }, 'first');
    cp = await newPlane();
    app = await startApp('b', '127.0.0.1', APP_PORT);
    // Bootstraps are made from the checked-out policies, as an operator would.
    for (const id of ['shop/a-1', 'shop/b-1']) envoys.push(await startSidecar(cp, id, { sotw: id.endsWith('b-1') }));
  });

  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await app?.stop();
    await cp?.stop();
    repo.cleanup();
  });

  test('the revision is the commit SHA and traffic flows', async () => {
    assert.equal(cp.current?.result.revision, good1);
    await waitFor(async () => (await callB('/x')).status === 200, { timeoutMs: 10_000, what: 'a -> b' });
    assert.equal((await callB('/blocked-1')).status, 403);
  });

  test('a bad commit is rejected with file:line diagnostics; traffic is unaffected', async () => {
    const bad = commit({ 'mesh/broken.yaml': BROKEN }, 'broken');
    const rejected = await waitFor(() => cp.revisions.find((r) => r.revision === bad), { timeoutMs: 5000, what: 'the bad commit to be compiled' });
    assert.equal(rejected.status, 'rejected');
    const where = rejected.diagnostics.map((d) => `${d.code} ${d.location?.file}:${d.location?.line}`);
    assert.ok(where.includes('CH0201 broken.yaml:8'), where.join(', '));
    assert.equal(rejected.diagnostics[0].location?.revision, bad);
    assert.equal(cp.current?.result.revision, good1, 'the last good commit is still served');
    const text = formatStatus(statusDocument(cp) as never);
    assert.match(text, new RegExp(`${bad.slice(0, 12)}\\s+rejected`));
    assert.match(text, /broken\.yaml:8:7 CH0201/);
    for (let i = 0; i < 5; i++) assert.equal((await callB('/x')).status, 200);
    const metrics = await scrape();
    assert.match(metrics, /chancery_revisions_total\{status="rejected"[^}]*\} [1-9]/);
    assert.match(metrics, /chancery_connected_proxies(\{[^}]*\})? 2\n/);
    assert.match(metrics, /chancery_xds_push_ack_seconds_bucket\{.*type="CDS"/);
  });

  test('the next good commit converges on every proxy, with its SHA in chancery status', async () => {
    const beforeGood2 = new Date();
    await new Promise((r) => setTimeout(r, 20));
    const good2 = commit({ 'mesh/broken.yaml': null, 'mesh/shop.yaml': mesh('/blocked-2') }, 'fixed');
    await waitFor(() => cp.convergence.get(good2)?.convergedAt, { timeoutMs: 10_000, what: 'every proxy to hold the new commit' });
    const text = formatStatus(statusDocument(cp) as never);
    assert.match(text, new RegExp(`shop/a-1  in sync  runs ${good2.slice(0, 12)}`));
    assert.match(text, new RegExp(`shop/b-1  in sync  runs ${good2.slice(0, 12)}`));
    assert.match(text, new RegExp(`${good2.slice(0, 12)}\\s+accepted .* 2/2 proxies, converged in \\d+ ms`));
    // A changed listener applies to new connections; a pooled connection on the old one drains (--drain-time-s).
    await waitFor(async () => (await callB('/blocked-2')).status === 403, { timeoutMs: 5000, what: 'the new rule to apply' });
    assert.equal((await callB('/blocked-1')).status, 200);
    assert.match(await scrape(), /chancery_revision_convergence_seconds_count(\{[^}]*\})? [1-9]/);

    // The incident question, answered from the history: what did b-1 run before the fix, and what now?
    const then = await cli(runHistory, ['--proxy', 'shop/b-1', '--at', beforeGood2.toISOString(), '--state-dir', stateDir, '--git', repo.dir, '--path', 'mesh']);
    assert.equal(then.code, 0);
    assert.match(then.out, new RegExp(`shop/b-1 at .*: revision ${good1}`));
    assert.match(then.out, /inbound\|127\.0\.7\.2:8080/);
    const now = await cli(runHistory, ['--proxy', 'shop/b-1', '--at', new Date().toISOString(), '--state-dir', stateDir]);
    assert.match(now.out, new RegExp(`revision ${good2}`));
  });

  test('a commit that changes only b: a is sent nothing, yet runs the new commit, in status and in history', async () => {
    const sentToA = JSON.stringify(cp.ads.registry.get('shop/a-1')?.types);
    const good3 = commit({ 'mesh/shop.yaml': mesh('/blocked-3') }, 'b only');
    await waitFor(() => cp.convergence.get(good3)?.convergedAt, { timeoutMs: 10_000, what: 'every proxy to hold the new commit' });
    assert.equal(cp.current?.result.compiled, 1, 'only b was compiled again');
    assert.equal(JSON.stringify(cp.ads.registry.get('shop/a-1')?.types), sentToA, 'nothing was sent to a');
    assert.match(formatStatus(statusDocument(cp) as never), new RegExp(`shop/a-1  in sync  runs ${good3.slice(0, 12)}`));
    const now = await cli(runHistory, ['--proxy', 'shop/a-1', '--at', new Date().toISOString(), '--state-dir', stateDir]);
    assert.match(now.out, new RegExp(`revision ${good3}`));
    await waitFor(async () => (await callB('/blocked-3')).status === 403, { timeoutMs: 5000, what: 'the new rule to apply' });
  });

  test('after a restart whose newest commit is bad, the last good commit is served again', async () => {
    const lastGood = cp.current!.result.revision;
    await cp.stop();
    const bad = commit({ 'mesh/broken.yaml': BROKEN }, 'broken again');
    cp = await newPlane();
    assert.equal(cp.revisions.find((r) => r.revision === bad)?.status, 'rejected');
    assert.equal(cp.current?.result.revision, lastGood);
    await waitFor(() => cp.ads.registry.all().filter((p) => p.connected && p.revision === lastGood).length === 2, { timeoutMs: 20_000, what: 'both proxies back on the last good commit' });
    await waitFor(async () => (await callB('/blocked-3')).status === 403, { timeoutMs: 5000, what: 'the last good rules' });
  });
});
