/**
 * The bootstrap writer of `serve`: bootstraps from a compile result (no compile of its own), kept while nothing they
 * hold changes, rewritten when what they trust changes (an xDS CA rotation step), removed with their workload.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { BootstrapWriter } from '../../src/app/bootstraps.js';
import { ControlPlane } from '../../src/app/control-plane.js';
import { silentLogger, type Logger } from '../../src/app/logger.js';
import { compileCount, compileSource } from '../../src/compiler.js';
import { serviceEntry, workloadEntry } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';

const mesh = (n: number) => ({
  revision: `r${n}`,
  files: [
    { path: 'svc.yaml', text: serviceEntry('a', 'ns') },
    ...Array.from({ length: n }, (_, i) => ({
      path: `w${i}.yaml`,
      text: workloadEntry(`a-${i}`, 'ns', 'a', `127.0.24.${40 + i}`),
    })),
  ],
});

test('bootstraps from a compile result: kept, rewritten on a new trust, removed with their workload', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chancery-bootstraps-'));
  let trust = 'TRUST-1\n';
  let tokens = 0;
  const logged: Record<string, unknown>[] = [];
  const info = (msg: string, f?: Record<string, unknown>) => {
    if (msg === 'envoy bootstraps written') logged.push(f!);
  };
  const log: Logger = { ...silentLogger, info };
  const writer = new BootstrapWriter({
    dir,
    xds: { host: '127.0.24.14', port: 15010 },
    tokenTtlSeconds: 3600,
    issueToken: async (id) => `token-${id}-${++tokens}`,
    trustPem: () => trust,
    log,
  });
  const three = compileSource(mesh(3));
  const compiles = compileCount();
  await writer.write(three);
  assert.deepEqual(readdirSync(dir).sort(), ['ns.a-0.yaml', 'ns.a-1.yaml', 'ns.a-2.yaml']);
  const doc = parse(readFileSync(path.join(dir, 'ns.a-1.yaml'), 'utf8'));
  assert.equal(doc.node.id, 'ns/a-1');
  assert.match(JSON.stringify(doc), /TRUST-1/);
  await writer.write(three);
  trust = 'TRUST-1\nTRUST-2\n';
  await writer.write(three);
  await writer.write(compileSource(mesh(2)));
  assert.deepEqual(readdirSync(dir).sort(), ['ns.a-0.yaml', 'ns.a-1.yaml']);
  assert.match(readFileSync(path.join(dir, 'ns.a-1.yaml'), 'utf8'), /TRUST-2/);
  assert.deepEqual(
    logged.map((l) => [l.written, l.kept, l.removed]),
    [[3, 0, 0], [0, 3, 0], [3, 0, 0], [0, 2, 1]],
  );
  assert.equal(tokens, 6, 'a token per file written, none for a file kept');
  assert.equal(compileCount(), compiles + 1, 'the writer compiled nothing (the one compile is the second mesh above)');
  rmSync(dir, { recursive: true, force: true });
});

test('an xDS CA rotation step tells the bootstrap writer', async () => {
  const config = mkdtempSync(path.join(os.tmpdir(), 'chancery-bw-src-'));
  const state = mkdtempSync(path.join(os.tmpdir(), 'chancery-bw-state-'));
  const host = '127.0.24.15';
  const xdsAddress = `${host}:${await freePort(host)}`;
  const settings = { configDir: config, stateDir: state, xdsAddress, maxNewStreamsPerSecond: 100, watch: false };
  const cp = new ControlPlane(settings, silentLogger);
  await cp.start();
  try {
    let told = 0;
    cp.onBootstrapTrustChanged.push(() => told++);
    const before = cp.xdsCa.bootstrapTrustPem();
    await cp.rotateXdsCa('begin');
    assert.equal(told, 1);
    assert.notEqual(cp.xdsCa.bootstrapTrustPem(), before, 'bootstraps now trust the next xDS CA too');
  } finally {
    await cp.stop();
    rmSync(config, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  }
});
