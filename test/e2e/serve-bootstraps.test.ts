/**
 * `chancery serve` writes every workload's bootstrap from the revision it compiled, once per accepted revision:
 * with 2,000 workloads the status API answers and all bootstraps are there after ONE compile (it used to compile the
 * whole mesh again per workload: hours), and `serve --git` writes the bootstraps of the Git mesh's workloads (it
 * used to recompile the default examples/mesh and write none). The real CLI runs in a child process, with a preload
 * that reports how many revisions it compiled.
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import { writeMesh, FLEET_CALLERS } from '../../bench/mesh.js';
import { XDS_CLUSTER } from '../../src/xds/names.js';
import { request, waitFor } from '../support/http.js';
import { serviceEntry, workloadEntry } from '../support/mesh-fixture.js';
import { validateEnvoyConfig } from '../support/envoy.js';
import { freePort } from '../support/ports.js';

const HOST = '127.0.24.21';
type Log = { msg: string } & Record<string, unknown>;

interface Serve {
  logs: Log[];
  adminPort: number;
  xdsPort: number;
  bootstrapDir: string;
  /** SIGTERM and wait for the exit (the last log is then the compile count). */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
after(() => {
  for (const p of running) p.kill('SIGKILL');
});

async function serve(args: string[]): Promise<Serve> {
  const state = mkdtempSync(path.join(os.tmpdir(), 'chancery-serve-state-'));
  const [adminPort, xdsPort] = [await freePort(HOST), await freePort(HOST)];
  const argv = ['--import', 'tsx', '--import', './test/support/count-compiles.ts', 'bin/chancery.mjs', 'serve'];
  argv.push(...args, '--state-dir', state, '--xds-host', HOST, '--xds-port', String(xdsPort));
  argv.push('--admin-host', HOST, '--admin-port', String(adminPort));
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  const logs: Log[] = [];
  let rest = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop()!;
    for (const l of lines) if (l.startsWith('{')) logs.push(JSON.parse(l) as Log);
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    logs,
    adminPort,
    xdsPort,
    bootstrapDir: path.join(state, 'bootstrap'),
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
      running.delete(child);
      rmSync(state, { recursive: true, force: true });
    },
  };
}

const files = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort() : []);
const revisionsCompiled = (logs: Log[]) =>
  logs.filter((l) => l.msg === 'revision accepted' || l.msg.startsWith('revision rejected'));
const compileCount = (logs: Log[]) => logs.find((l) => l.msg === 'compile count')?.compiles;

describe('serve writes bootstraps from the compiled revision', { timeout: 300_000 }, () => {
  test('2,000 workloads: the status API answers and every bootstrap is written, all from one compile', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'chancery-2000-'));
    writeMesh(dir, { name: 'W', services: 50, endpointsPerService: 2, proxies: 2000, scope: 3 });
    const s = await serve(['--config', dir]);
    try {
      // A generous bound: one compile takes seconds here; compiling once per workload took hours.
      const get = () => request({ host: HOST, port: s.adminPort, path: '/status' });
      const status = await waitFor(() => get().then((r) => r.status === 200 && r), {
        timeoutMs: 120_000,
        intervalMs: 250,
        what: 'the status API',
      });
      assert.equal(status.status, 200);
      const written = await waitFor(() => s.logs.find((l) => l.msg === 'envoy bootstraps written'), {
        timeoutMs: 60_000,
        what: 'bootstraps',
      });
      // The bench mesh also holds the callers of its WorkloadGroup's service.
      assert.equal(written.written, 2000 + FLEET_CALLERS);
      const names = files(s.bootstrapDir);
      assert.equal(names.length, 2000 + FLEET_CALLERS);
      assert.ok(names.includes('bench.client-0.yaml') && names.includes('bench.client-1999.yaml'));
      const doc = parse(readFileSync(path.join(s.bootstrapDir, 'bench.client-7.yaml'), 'utf8'));
      assert.equal(doc.node.id, 'bench/client-7');
      const xds = doc.static_resources.clusters.find((c: { name: string }) => c.name === XDS_CLUSTER);
      const address = xds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
      assert.equal(address.port_value, s.xdsPort);
      const v = validateEnvoyConfig(doc);
      assert.ok(v.ok, v.output);
    } finally {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(revisionsCompiled(s.logs).length, 1, 'one revision');
    assert.equal(compileCount(s.logs), 1, 'the process compiled once, bootstraps included');
  });

  test('serve --git writes the bootstraps of the Git mesh, again on each accepted commit', async () => {
    const repo = mkdtempSync(path.join(os.tmpdir(), 'chancery-git-bootstraps-'));
    const git = (...a: string[]) => execFileSync('git', a, { cwd: repo, encoding: 'utf8' }).trim();
    git('init', '-q', '-b', 'main');
    git('config', 'user.email', 'test@example.com');
    git('config', 'user.name', 'test');
    const commit = (name: string, text: string | null): string => {
      if (text === null) git('rm', '-q', name);
      else {
        writeFileSync(path.join(repo, name), text);
        git('add', name);
      }
      git('commit', '-q', '-m', name);
      return git('rev-parse', 'HEAD');
    };
    const alpha1 = workloadEntry('alpha-1', 'git', 'alpha', '127.0.24.31');
    commit('svc.yaml', `${serviceEntry('alpha', 'git')}---\n${alpha1}`);
    const first = commit('beta.yaml', workloadEntry('beta-1', 'git', 'alpha', '127.0.24.32'));
    const s = await serve(['--git', repo, '--poll', '200ms']);
    const writtenFor = (rev: string) => () =>
      s.logs.find((l) => l.msg === 'envoy bootstraps written' && l.revision === rev);
    try {
      const one = await waitFor(writtenFor(first), { timeoutMs: 60_000, what: `bootstraps of ${first}` });
      assert.deepEqual(files(s.bootstrapDir), ['git.alpha-1.yaml', 'git.beta-1.yaml']);
      assert.equal(one.written, 2);
      assert.equal(parse(readFileSync(path.join(s.bootstrapDir, 'git.beta-1.yaml'), 'utf8')).node.id, 'git/beta-1');

      const second = commit('gamma.yaml', workloadEntry('gamma-1', 'git', 'alpha', '127.0.24.33'));
      const two = await waitFor(writtenFor(second), { timeoutMs: 30_000, what: `bootstraps of ${second}` });
      assert.deepEqual(files(s.bootstrapDir), ['git.alpha-1.yaml', 'git.beta-1.yaml', 'git.gamma-1.yaml']);
      assert.deepEqual([two.written, two.kept], [1, 2], 'unchanged workloads keep their files');

      const third = commit('beta.yaml', null);
      const three = await waitFor(writtenFor(third), { timeoutMs: 30_000, what: `bootstraps of ${third}` });
      const left = ['git.alpha-1.yaml', 'git.gamma-1.yaml'];
      assert.deepEqual(files(s.bootstrapDir), left, "a removed workload's file goes");
      assert.equal(three.removed, 1);
    } finally {
      await s.stop();
      rmSync(repo, { recursive: true, force: true });
    }
    const revisions = revisionsCompiled(s.logs).length;
    assert.equal(compileCount(s.logs), revisions, 'one compile per revision, bootstraps included');
  });
});
