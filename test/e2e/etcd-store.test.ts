/**
 * The store modules on a real etcd (127.0.50.5), without the control plane: racing replicas share one workload
 * certificate and one rotation of it; a key deleted by a replica that no longer holds it stays; a lost lease (etcd
 * revoked it) is replaced and its keys put back.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../src/app/logger.js';
import { Authority } from '../../src/ca/authority.js';
import { systemClock } from '../../src/ca/clock.js';
import { EtcdStore } from '../../src/store/etcd-store.js';
import { SharedSvids } from '../../src/store/shared-svids.js';
import { shareRemovals } from '../../src/store/shared-removals.js';
import { WorkloadRemovals } from '../../src/server/workload-removals.js';
import { EtcdProcess } from '../support/etcd.js';
import { waitFor } from '../support/http.js';

const SETTINGS = { ttlMs: 3_600_000, rotateAtFraction: 0.5, jitterFraction: 0.1 };
const ID = 'spiffe://cluster.local/ns/a/sa/b';

describe('store modules on a real etcd', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chancery-store-'));
  const keyFile = path.join(dir, 'store.key');
  let etcd: EtcdProcess;
  const stores: EtcdStore[] = [];
  const open = async (replica: string) => {
    const s = await EtcdStore.open({ url: etcd.url, keyFile, replica, log: silentLogger });
    stores.push(s);
    return s;
  };

  before(async () => {
    writeFileSync(keyFile, randomBytes(32));
    etcd = await EtcdProcess.start('127.0.50.5');
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await etcd?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('racing replicas obtain one certificate per identity, and one rotation of it', async () => {
    const authority = await Authority.open({ stateDir: path.join(dir, 'state'), clock: systemClock });
    const [a, b] = [await open('a'), await open('b')];
    const sa = new SharedSvids(a, authority, systemClock, () => SETTINGS);
    const sb = new SharedSvids(b, authority, systemClock, () => SETTINGS);
    const [ca, cb] = await Promise.all([sa.obtain(ID, SETTINGS.ttlMs), sb.obtain(ID, SETTINGS.ttlMs)]);
    assert.equal(ca.serial, cb.serial, 'the loser takes the winner');
    assert.equal(ca.keyPem, cb.keyPem);
    assert.equal(sa.issued + sb.issued, 1, 'one stored');
    const raw = await a.kv.get(`svids/${ID}`).string();
    assert.ok(raw && !raw.includes('PRIVATE KEY'), 'the key is sealed in etcd');
    const [ra, rb] = await Promise.all([
      sa.obtain(ID, SETTINGS.ttlMs, ca.serial),
      sb.obtain(ID, SETTINGS.ttlMs, ca.serial),
    ]);
    assert.notEqual(ra.serial, ca.serial, 'rotated');
    assert.equal(ra.serial, rb.serial, 'rotated once');
    assert.equal((await sb.obtain(ID, SETTINGS.ttlMs)).serial, ra.serial, 'and served from then on');
  });

  test('a replica that no longer holds a key does not delete it', async () => {
    const [a, b] = [await open('a2'), await open('b2')];
    await a.putLeased('registrations/ns/x', 'a');
    await b.putLeased('registrations/ns/x', 'b'); // the instance moved to b
    assert.equal(await a.deleteLeased('registrations/ns/x'), false);
    assert.equal(await a.kv.get('registrations/ns/x').string(), 'b');
    assert.equal(await b.deleteLeased('registrations/ns/x'), true);
    assert.equal(await a.kv.get('registrations/ns/x').string(), null);
  });

  test('a workload removed on one replica counts as removed on a replica started afterwards', async () => {
    const [a, b] = [await open('a3'), await open('b3')];
    const ra = WorkloadRemovals.open(mkdtempSync(path.join(dir, 'ra-')));
    await shareRemovals(a, ra, silentLogger);
    ra.update(['ns/x', 'ns/y'], 1_000);
    assert.deepEqual(ra.update(['ns/y'], 2_000), ['ns/x']);
    const rb = WorkloadRemovals.open(mkdtempSync(path.join(dir, 'rb-'))); // knows nothing of ns/x
    await waitFor(async () => (await a.kv.get('removals/ns/x').string()) !== null, { timeoutMs: 5000, what: 'shared' });
    await shareRemovals(b, rb, silentLogger);
    assert.equal(rb.removedAt('ns/x'), 2_000, 'its old tokens are refused here too');
    assert.equal(rb.removedAt('ns/y'), undefined);
  });

  test('a lost lease is replaced and its keys are put back', async () => {
    const s = await open('c');
    await s.putLeased('registrations/ns/y', 'c');
    const etcdctl = (...args: string[]) =>
      execFileSync('etcdctl', ['--endpoints', `${etcd.host}:${etcd.port}`, ...args], {
        env: { ...process.env, ETCDCTL_API: '3' },
      }).toString();
    const lease = (await s.kv.get('registrations/ns/y').exec()).kvs[0].lease;
    etcdctl('lease', 'revoke', BigInt(lease).toString(16));
    assert.equal(await s.kv.get('registrations/ns/y').string(), null, 'gone with its lease');
    await waitFor(async () => (await s.kv.get('registrations/ns/y').string()) === 'c', {
      timeoutMs: 10_000,
      what: 'the key put back under a new lease',
    });
    const now = (await s.kv.get('registrations/ns/y').exec()).kvs[0].lease;
    assert.notEqual(String(now), String(lease));
    assert.equal(s.available, true);
  });

  test('puts and deletes that failed while etcd was away are done when it returns', async () => {
    const s = await open('d');
    await s.putLeased('registrations/ns/gone', 'x');
    await etcd.stop();
    await assert.rejects(s.deleteLeased('registrations/ns/gone'));
    await assert.rejects(s.putLeased('registrations/ns/new', 'y'));
    await etcd.start();
    await waitFor(
      async () =>
        (await s.kv.get('registrations/ns/gone').string()) === null &&
        (await s.kv.get('registrations/ns/new').string()) === 'y',
      { timeoutMs: 15_000, what: 'the delete and the put done after the outage' },
    );
  });
});
