/**
 * One compiler for every command: `check`, `render`, the goldens (compileSource) and `serve` compile and strictly
 * encode a revision the same way, so whatever the server would refuse to push, `check` refuses too, at the policy
 * that caused it. And no document is dropped silently: every kind that needs a `spec` reports its absence.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ControlPlane } from '../src/app/control-plane.js';
import { silentLogger } from '../src/app/logger.js';
import { runCheck } from '../src/cli/check.js';
import { runRender } from '../src/cli/render.js';
import { compileSource } from '../src/compiler.js';
import type { Diagnostic } from '../src/diag/diagnostic.js';
import { KINDS } from '../src/policy/kinds/index.js';
import { readDirectory } from '../src/source/directory.js';
import { serviceEntry, workloadEntry } from './support/mesh-fixture.js';
import { freePort } from './support/ports.js';

/** Runs a CLI command in-process; what it prints is discarded, its exit code returned with its JSON output. */
type Cli = (argv: string[]) => Promise<number>;

async function quietly(fn: Cli, argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  console.error = () => undefined;
  try {
    return { code: await fn(argv), out: lines.join('\n') };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

const where = (ds: readonly Diagnostic[]) =>
  ds
    .filter((d) => d.severity === 'error')
    .map((d) => `${d.code} ${d.location ? `${d.location.file}:${d.location.line}` : '-'}`);

// Valid for every check before encoding; Envoy's circuit breaker max_connections is a uint32.
const TOO_MANY_CONNECTIONS = `${serviceEntry('b', 'shop')}---
${workloadEntry('b-1', 'shop', 'b', '127.0.24.13')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: b, namespace: shop }
spec:
  host: b.shop.svc
  trafficPolicy:
    connectionPool:
      tcp: { maxConnections: 5000000000 }
`;

describe('one compile-and-encode path', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chancery-one-compiler-'));
  const state = mkdtempSync(path.join(os.tmpdir(), 'chancery-one-compiler-state-'));
  let cp: ControlPlane | undefined;
  after(async () => {
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  });

  test('a revision the strict encoding refuses: serve rejects it, so do check, render and the goldens', async () => {
    writeFileSync(path.join(dir, 'b.yaml'), TOO_MANY_CONNECTIONS);
    const host = '127.0.24.12';
    const xdsAddress = `${host}:${await freePort(host)}`;
    const settings = { configDir: dir, stateDir: state, xdsAddress, maxNewStreamsPerSecond: 100, watch: false };
    cp = new ControlPlane(settings, silentLogger);
    await cp.start();
    const served = cp.revisions.at(-1)!;
    assert.equal(served.status, 'rejected');

    const check = await quietly(runCheck, [dir, '--format', 'json']);
    assert.equal(check.code, 1, 'check exits 1');
    const checked = JSON.parse(check.out) as Diagnostic[];
    assert.deepEqual(where(checked), where(served.diagnostics), 'check reports what serve reports');
    assert.ok(where(checked).some((d) => d.startsWith('CH0204 b.yaml:')), 'located at the policy that produced it');
    assert.match(checked.find((d) => d.code === 'CH0204')!.message, /max_connections/);

    assert.equal((await quietly(runRender, ['--config', dir, '--proxy', 'shop/b-1'])).code, 1, 'render exits 1');
    const src = readDirectory(dir);
    const golden = compileSource(src.value, src.diagnostics);
    assert.equal(golden.ok, false);
    assert.deepEqual(golden.proxies.size + golden.snapshots.size, 0, 'rejected whole');
  });

  test('what check compiles is byte for byte what serve publishes', async () => {
    writeFileSync(path.join(dir, 'b.yaml'), TOO_MANY_CONNECTIONS.replace('5000000000', '500'));
    const record = await cp!.reload();
    assert.equal(record.status, 'accepted');
    const src = readDirectory(dir);
    const offline = compileSource(src.value, src.diagnostics);
    assert.equal(offline.revision, record.revision);
    for (const [id, snap] of offline.snapshots) assert.equal(cp!.current!.base.get(id)?.version, snap.version, id);
    assert.equal(offline.snapshots.size, cp!.current!.base.size);
    assert.equal((await quietly(runCheck, [dir])).code, 0);
  });
});

const SPEC_NOT_A_MAP = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: a, namespace: ns }
spec: 5
`;

describe('documents without spec', () => {
  const needing = KINDS.filter((k) => k.requiresSpec);

  test('every kind that needs a spec says so at the document (file:line); none is dropped silently', () => {
    const silentBefore = ['ServiceEntry', 'VirtualService', 'DestinationRule', 'Sidecar', 'WorkloadEntry'];
    silentBefore.push('RateLimitPolicy');
    for (const k of silentBefore) {
      assert.ok(needing.some((n) => n.kind === k), `${k} needs a spec`);
    }
    // One file, one document per kind, each three lines long and starting at line 1 + 4i.
    const doc = (k: (typeof needing)[number], i: number) =>
      `apiVersion: ${k.group}/${k.versions[0]}\nkind: ${k.kind}\nmetadata: { name: x${i}, namespace: ns }\n`;
    const text = needing.map(doc).join('---\n');
    const r = compileSource({ revision: 'r', files: [{ path: 'nospec.yaml', text }] });
    assert.deepEqual(where(r.diagnostics), needing.map((_k, i) => `CH0203 nospec.yaml:${1 + 4 * i}`));
    assert.ok(r.diagnostics.every((d) => d.path === 'spec'));
  });

  test('a spec that is not a mapping is one error, not two; a Mesh needs none', () => {
    const r = compileSource({
      revision: 'r',
      files: [
        { path: 'a.yaml', text: SPEC_NOT_A_MAP },
        { path: 'mesh.yaml', text: 'apiVersion: chancery.dev/v1alpha1\nkind: Mesh\nmetadata: { name: mesh }\n' },
      ],
    });
    assert.deepEqual(where(r.diagnostics), ['CH0202 a.yaml:4']);
  });
});
