/**
 * The registry with replicas (src/app/registrations.ts with `sharing`): local instances are claimed and released
 * in the store, other replicas' instances join the compiled union, the rules apply to the union, and an instance
 * that moved between replicas is claimed by the one it moved to and never released by the one it left.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registrations, type Instance, type Timers } from '../../src/app/registrations.js';
import type { Group } from '../../src/model/groups.js';

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

const group = (id: string, maxInstances: number): Group => {
  const [namespace, name] = id.split('/');
  const template = { labels: {}, annotations: {}, ports: {}, serviceAccount: 'default', identity: '' };
  return { id, namespace, name, ...template, maxInstances, origin: { file: 'g.yaml', line: 1, column: 1 } };
};
const GROUPS = [group('ns/api', 2)];
const none = () => false;
const req = (id: string, address = '10.0.0.1') => ({ id, group: 'ns/api', generation: 0, address });
const remote = (id: string, replica: string, address = '10.0.0.9') => ({
  id,
  group: 'ns/api',
  generation: 0,
  address,
  registeredAt: '2026-01-01T00:00:00.000Z',
  replica,
});

function registry() {
  const timers = fakeTimers();
  const r = new Registrations(30_000, undefined, timers);
  const log: string[] = [];
  r.sharing = {
    claim: (i: Instance) => void log.push(`claim ${i.id}@${i.address}`),
    release: (id: string) => void log.push(`release ${id}`),
  };
  return { r, log, timers };
}

test("other replicas' instances join the list, count toward maxInstances, and leave when they are deleted", () => {
  const { r, log } = registry();
  r.applyRemote(remote('ns/api-b', 'r2'));
  assert.deepEqual(
    r.list().map((i) => i.id),
    ['ns/api-b'],
  );
  assert.equal(r.register(req('ns/api-a'), GROUPS, none).ok, true);
  const third = r.register(req('ns/api-c', '10.0.0.3'), GROUPS, none);
  assert.equal(third.ok, false, 'maxInstances 2 counts the instance on r2');
  assert.deepEqual(log, ['claim ns/api-a@10.0.0.1'], 'only the local instance is claimed');
  r.dropRemote('ns/api-b');
  assert.deepEqual(
    r.list().map((i) => i.id),
    ['ns/api-a'],
  );
  r.dropRemote('ns/api-a');
  assert.deepEqual(
    r.list().map((i) => i.id),
    ['ns/api-a'],
    'a delete never removes a local instance',
  );
});

test('an instance that moves to another replica is released by nobody; one that moves here is claimed', () => {
  const { r, log, timers } = registry();
  r.register(req('ns/api-a'), GROUPS, none);
  r.disconnected('ns/api-a');
  r.applyRemote(remote('ns/api-a', 'r2', '10.0.0.1')); // its Envoy reconnected to r2, which put it again
  timers.advance(31_000);
  assert.deepEqual(
    r.list().map((i) => i.id),
    ['ns/api-a'],
    'the grace on the old replica does not remove it',
  );
  assert.deepEqual(log, ['claim ns/api-a@10.0.0.1'], 'and does not release it');
  assert.equal(r.get('ns/api-a')?.replica, 'r2');
  r.register(req('ns/api-a'), GROUPS, none); // back here
  assert.deepEqual(log.slice(1), ['claim ns/api-a@10.0.0.1'], 'taken over');
  assert.equal(r.get('ns/api-a')?.replica, undefined);
  r.disconnected('ns/api-a');
  timers.advance(31_000);
  assert.deepEqual(log.slice(2), ['release ns/api-a'], 'its grace here is over: released');
  assert.deepEqual(r.list(), []);
});

test('reconcile evicts by the same rules across the union; only local instances are released', () => {
  const { r, log } = registry();
  r.register(req('ns/api-a'), GROUPS, none);
  r.applyRemote(remote('ns/api-b', 'r2'));
  const evicted = r.reconcile(
    GROUPS,
    (id) => id === 'ns/api-a' || id === 'ns/api-b',
    () => 0,
  );
  assert.deepEqual(evicted, ['ns/api-a', 'ns/api-b']);
  assert.deepEqual(log, ['claim ns/api-a@10.0.0.1', 'release ns/api-a']);
});
