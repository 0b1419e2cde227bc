/**
 * The registry of registered instances (src/app/registrations.ts) with a fake clock: who may register, the
 * instance limit, the grace period, reconciliation with a new revision, its state file; group tokens and their
 * generations.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { instanceAddress, Registrations, type Timers } from '../../src/app/registrations.js';
import type { Group } from '../../src/model/groups.js';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../src/app/logger.js';
import { AdsServer, DEFAULT_ADS_OPTIONS } from '../../src/server/ads-server.js';
import { GroupGenerations } from '../../src/server/group-generations.js';
import { ProxyTokens } from '../../src/server/proxy-auth.js';
import { freePort } from '../support/ports.js';
import { T, XdsTestClient } from '../support/xds-client.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'chancery-registrations-'));

/** A clock whose timers run when `advance` passes them. */
function fakeTimers(): Timers & { advance(ms: number): void } {
  let now = 1_000_000;
  let timers: { at: number; fn: () => void; live: boolean }[] = [];
  return {
    now: () => now,
    after(ms, fn) {
      const t = { at: now + ms, fn, live: true };
      timers.push(t);
      return { cancel: () => void (t.live = false) };
    },
    advance(ms) {
      now += ms;
      const due = timers.filter((t) => t.live && t.at <= now);
      timers = timers.filter((t) => !due.includes(t));
      for (const t of due) t.fn();
    },
  };
}

const group = (id: string, maxInstances = 3): Group => {
  const [namespace, name] = id.split('/');
  const origin = { file: 'g.yaml', line: 1, column: 1 };
  const template = { labels: {}, annotations: {}, ports: {}, serviceAccount: 'default', identity: '' };
  return { id, namespace, name, ...template, maxInstances, origin };
};
const GROUPS = [group('ns/api'), group('ns/web')];
const none = () => false;
const req = (id: string, g = 'ns/api', address = '10.0.0.1', generation = 0) => ({ id, group: g, generation, address });

test('register: names inside the token\'s group only, never a committed name, at most maxInstances', () => {
  const r = new Registrations(30_000, undefined, fakeTimers());
  const changes: string[] = [];
  r.onChange = (c) => changes.push(`+${c.added.join()}-${c.removed.join()}`);
  assert.deepEqual(r.register(req('ns/api-1'), GROUPS, none), { ok: true, added: true });
  assert.equal(r.register(req('ns/web-1'), GROUPS, none).ok, false, "web's name with api's token");
  assert.equal(r.register(req('ns/cache-1'), GROUPS, none).ok, false, 'inside no group');
  assert.equal(r.register(req('other/api-1'), GROUPS, none).ok, false, 'another namespace');
  assert.equal(r.register(req('ns/api-2'), GROUPS, (id) => id === 'ns/api-2').ok, false, 'a committed WorkloadEntry');
  r.register(req('ns/api-2'), GROUPS, none);
  r.register(req('ns/api-3'), GROUPS, none);
  const full = r.register(req('ns/api-4'), GROUPS, none);
  assert.equal(full.ok, false);
  assert.equal(!full.ok && full.code, 'RESOURCE_EXHAUSTED');
  const again = r.register(req('ns/api-1'), GROUPS, none);
  assert.deepEqual(again, { ok: true, added: false }, 'a reconnect keeps its place');
  r.register(req('ns/api-1', 'ns/api', '10.0.0.9'), GROUPS, none);
  assert.deepEqual(changes, ['+ns/api-1-', '+ns/api-2-', '+ns/api-3-', '+ns/api-1-'], 'a new address is a change');
  const listed = r.list().map((i) => `${i.id}@${i.address}`);
  assert.deepEqual(listed, ['ns/api-1@10.0.0.9', 'ns/api-2@10.0.0.1', 'ns/api-3@10.0.0.1']);
  assert.equal(r.list(), r.list(), 'the same array until something changes');
});

test('grace: an instance leaves graceMs after its stream went away, unless it comes back before', () => {
  const clock = fakeTimers();
  const r = new Registrations(30_000, undefined, clock);
  const removed: string[] = [];
  r.onChange = (c) => removed.push(...c.removed);
  r.register(req('ns/api-1'), GROUPS, none);
  r.register(req('ns/api-2'), GROUPS, none);
  r.disconnected('ns/api-1');
  r.disconnected('ns/api-2');
  clock.advance(20_000);
  r.register(req('ns/api-2'), GROUPS, none); // back within the grace period
  assert.equal(r.get('ns/api-1')?.connected, false);
  clock.advance(10_000);
  assert.deepEqual(removed, ['ns/api-1']);
  assert.deepEqual(r.list().map((i) => i.id), ['ns/api-2']);
  clock.advance(60_000);
  assert.deepEqual(removed, ['ns/api-1'], 'the one that came back stays');
  r.disconnected('ns/unknown'); // not registered: nothing happens
});

test('reconcile: group gone, name taken by a commit or a longer group, revoked generation, lowered limit', () => {
  const clock = fakeTimers();
  const r = new Registrations(30_000, undefined, clock);
  for (const id of ['ns/api-1', 'ns/api-2', 'ns/api-3', 'ns/api-v2-1']) {
    assert.ok(r.register(req(id), [group('ns/api', 9), group('ns/web')], none).ok);
    clock.advance(1);
  }
  r.register(req('ns/web-1', 'ns/web', '10.0.0.5', 4), GROUPS, none);
  const next = [group('ns/api', 1), group('ns/api-v2')]; // web gone, api-v2 new, api lowered to 1
  const evicted = r.reconcile(next, (id) => id === 'ns/api-1', (g) => (g === 'ns/web' ? 5 : 0));
  // api-1 is committed now; api-v2-1 belongs to api-v2; web-1's group is gone; of api-2 and api-3 the newest goes.
  assert.deepEqual(evicted, ['ns/api-1', 'ns/api-3', 'ns/api-v2-1', 'ns/web-1']);
  assert.deepEqual(r.list().map((i) => i.id), ['ns/api-2']);
  assert.deepEqual(r.reconcile(next, none, () => 1), ['ns/api-2'], 'its generation was revoked');
});

test('state file: kept instances come back disconnected, each with the grace period to reconnect', () => {
  const dir = tmp();
  const clock = fakeTimers();
  const a = Registrations.open(dir, 30_000, clock);
  a.register(req('ns/api-1', 'ns/api', '10.0.0.1', 2), GROUPS, none);
  a.register(req('ns/api-2'), GROUPS, none);
  a.save();
  const saved = JSON.parse(readFileSync(path.join(dir, 'registrations.json'), 'utf8'));
  assert.deepEqual(Object.keys(saved.instances[0]).sort(), ['address', 'generation', 'group', 'id', 'registeredAt']);
  const b = Registrations.open(dir, 30_000, clock);
  const loaded = b.all().map((i) => [i.id, i.connected, i.generation]);
  assert.deepEqual(loaded, [['ns/api-1', false, 2], ['ns/api-2', false, 0]]);
  b.register(req('ns/api-1', 'ns/api', '10.0.0.1', 2), GROUPS, none);
  clock.advance(30_000);
  assert.deepEqual(b.list().map((i) => i.id), ['ns/api-1'], 'api-2 did not come back in time');
  writeFileSync(path.join(dir, 'registrations.json'), '{"instances": [{"id": 1}, ');
  assert.deepEqual(Registrations.open(dir, 30_000, clock).all(), [], 'a damaged file is an empty registry');
});

test('instance address: node metadata first, else the peer of the connection', () => {
  assert.equal(instanceAddress({ 'chancery.dev/address': '10.1.2.3' }, 'ipv4:127.0.0.1:5000'), '10.1.2.3');
  assert.equal(instanceAddress({ 'chancery.dev/address': 'evil.example' }, '127.0.0.1:5000'), undefined);
  assert.equal(instanceAddress({}, '127.0.36.4:5000'), '127.0.36.4');
  assert.equal(instanceAddress(undefined, 'ipv4:10.0.0.1:443'), '10.0.0.1');
  assert.equal(instanceAddress({}, '[::ffff:10.0.0.2]:443'), '10.0.0.2');
  assert.equal(instanceAddress({}, '[::1]:443'), '::1');
  assert.equal(instanceAddress({}, 'unix:/tmp/sock'), undefined);
});

test('group tokens: their own audience, the group and its current generation; revocation refuses them', async () => {
  const dir = tmp();
  const tokens = ProxyTokens.open(dir);
  const gens = GroupGenerations.open(dir);
  const t0 = await tokens.issueGroup('ns/api', gens.generation('ns/api'), 3600);
  assert.ok(ProxyTokens.isGroupToken(t0));
  const generationOf = (g: string) => gens.generation(g);
  const ok = await tokens.verifyGroup(t0, Date.now(), generationOf);
  assert.deepEqual(ok, { ok: true, group: 'ns/api', generation: 0 });
  assert.equal((await tokens.verify(t0)).ok, false, 'a group token is no workload token');
  const w = await tokens.issue('ns/api-1', 3600);
  assert.ok(!ProxyTokens.isGroupToken(w));
  assert.equal((await tokens.verifyGroup(w, Date.now(), () => 0)).ok, false, 'a workload token is no group token');
  const other = ProxyTokens.open(tmp());
  const forged = await other.issueGroup('ns/api', 0, 3600);
  assert.equal((await tokens.verifyGroup(forged, Date.now(), () => 0)).ok, false, 'forged');
  // Revoked in another process (the CLI): the server's instance reads the file again.
  assert.equal(GroupGenerations.open(dir).revoke('ns/api'), 1);
  const v = await tokens.verifyGroup(t0, Date.now(), (g) => gens.generation(g));
  assert.deepEqual(v, { ok: false, reason: 'group token revoked' });
  const t1 = await tokens.issueGroup('ns/api', gens.generation('ns/api'), 3600);
  assert.equal((await tokens.verifyGroup(t1, Date.now(), (g) => gens.generation(g))).ok, true, 'a new bootstrap works');
  assert.equal(gens.generation('ns/web'), 0, 'other groups untouched');
  writeFileSync(path.join(dir, 'groups.json'), '{"groups": {"ns/api": {"generation": -1}}}');
  assert.throws(() => gens.generation('ns/api'), /groups\.json: group ns\/api has no valid generation/);
});

test('ads server: a stream whose registration compiles survives a publish; one awaiting nothing does not', async () => {
  const awaited = new Set(['ns/api-1']);
  const ads = new AdsServer(
    {
      ...DEFAULT_ADS_OPTIONS,
      authenticate: async () => ({ ok: true }),
      admit: () => ({ ok: true }),
      awaited: (id) => awaited.has(id),
    },
    silentLogger,
  );
  const host = '127.0.36.2';
  const port = await ads.listen(`${host}:${await freePort(host)}`);
  const waiting = new XdsTestClient(port, 'delta', 'x', host);
  const unknown = new XdsTestClient(port, 'delta', 'x', host);
  try {
    waiting.send({ node: { id: 'ns/api-1', cluster: 'ns' }, type_url: T.CDS });
    unknown.send({ node: { id: 'ns/other-1', cluster: 'ns' }, type_url: T.CDS });
    const connected = () => ads.registry.get('ns/api-1')?.connected && ads.registry.get('ns/other-1')?.connected;
    for (let i = 0; i < 200 && !connected(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(connected(), 'both streams admitted');
    ads.publish(new Map()); // another registration compiled: neither proxy has a snapshot yet
    assert.equal((await unknown.ended(3000)).code, grpc.status.NOT_FOUND, 'no snapshot and nothing awaited: closed');
    assert.ok(await waiting.quiet(200), 'the awaited one stays open, nothing sent yet');
    assert.equal(waiting.status, undefined);
  } finally {
    waiting.close();
    unknown.close();
    await ads.close(100);
  }
});
