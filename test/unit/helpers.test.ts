/**
 * Small pure helpers: durations, names, hashes, SPIFFE ids, debounce.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDurationMs } from '../../src/policy/reader.js';
import { clusterName, listenerName } from '../../src/xds/names.js';
import { canonicalJson, setVersion } from '../../src/snapshot/canonical.js';
import { spiffeId } from '../../src/model/mesh-model.js';
import { debounce, watchDirectory } from '../../src/source/watch.js';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

test('durations as Istio writes them', () => {
  const table: [string, number | undefined][] = [
    ['250ms', 250], ['10s', 10_000], ['1.5s', 1500], ['5m', 300_000], ['24h', 86_400_000], ['1m30s', 90_000], ['', undefined], ['10', undefined], ['1d', undefined], ['s', undefined],
  ];
  for (const [s, ms] of table) assert.equal(parseDurationMs(s), ms, s);
});

test('Envoy names follow Istio conventions', () => {
  assert.equal(clusterName({ direction: 'outbound', host: 'b.ns.svc', port: 80 }), 'outbound|80||b.ns.svc');
  assert.equal(clusterName({ direction: 'outbound', host: 'b.ns.svc', port: 80, subset: 'v2' }), 'outbound|80|v2|b.ns.svc');
  assert.equal(clusterName({ direction: 'inbound', port: 8080 }), 'inbound|8080||');
  assert.equal(listenerName('inbound', '10.0.0.1', 8080), 'inbound|10.0.0.1:8080');
});

test('canonical JSON and set versions ignore key and entry order', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: 2, c: [3, { f: 1, e: 0 }] } }), '{"a":{"c":[3,{"e":0,"f":1}],"d":2},"b":1}');
  assert.equal(setVersion([{ name: 'a', version: '1' }, { name: 'b', version: '2' }]), setVersion([{ name: 'b', version: '2' }, { name: 'a', version: '1' }]));
  assert.notEqual(setVersion([{ name: 'a', version: '1' }]), setVersion([{ name: 'a', version: '2' }]));
});

test('SPIFFE ids', () => {
  assert.equal(spiffeId('cluster.local', 'shop', 'frontend'), 'spiffe://cluster.local/ns/shop/sa/frontend');
});

test('debounce: a burst fires once after the quiet period; a stream still fires by the max delay', async () => {
  let fired = 0;
  const d = debounce(() => fired++, 40, 120);
  for (let i = 0; i < 5; i++) d.trigger();
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(fired, 1);
  const t0 = Date.now();
  const stream = setInterval(() => d.trigger(), 10);
  await new Promise((r) => setTimeout(r, 200));
  clearInterval(stream);
  d.cancel();
  assert.ok(fired >= 2, 'fired during a continuous stream of changes');
  assert.ok(Date.now() - t0 >= 120);
});

test('the directory watcher sees edits in subdirectories, including ones created after it started, and ignores hidden files', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chancery-watch-'));
  mkdirSync(path.join(dir, 'a'));
  let fired = 0;
  const stop = watchDirectory(dir, () => fired++, 20, 200);
  const changed = async (what: string, edit: () => void) => {
    const before = fired;
    edit();
    const deadline = Date.now() + 3000;
    while (fired === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(fired > before, `${what} was noticed`);
  };
  try {
    await changed('a file in an existing subdirectory', () => writeFileSync(path.join(dir, 'a', 'x.yaml'), 'a: 1\n'));
    await changed('a new subdirectory', () => mkdirSync(path.join(dir, 'b', 'c'), { recursive: true }));
    await new Promise((r) => setTimeout(r, 50)); // the new directories' watchers are set up on that event
    await changed('a file in the new nested directory', () => writeFileSync(path.join(dir, 'b', 'c', 'y.yaml'), 'b: 1\n'));
    const before = fired;
    writeFileSync(path.join(dir, 'a', '.swp'), 'x');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(fired, before, 'hidden files are ignored');
  } finally {
    stop();
  }
});
