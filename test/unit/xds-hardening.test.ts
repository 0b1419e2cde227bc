/**
 * The xDS server's bounds, as tables: admission budgets, bounded-rate refusal logs, NACK message truncation, token
 * claims and lifetimes, and the removed-workloads state file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../../src/app/logger.js';
import { Admission, RefusalLog } from '../../src/server/admission.js';
import { MAX_TOKEN_TTL_SECONDS, ProxyTokens } from '../../src/server/proxy-auth.js';
import { boundNackMessage, MAX_NACK_MESSAGE_BYTES } from '../../src/server/wire.js';
import { WorkloadRemovals } from '../../src/server/workload-removals.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'chancery-hardening-'));

test('admission: failed attempts have their own budget and never use up the one of authenticated streams', () => {
  let now = 0;
  const a = new Admission({ authenticatedPerSecond: 5, unauthenticatedPerSecond: 3, now: () => now });
  const flood = Array.from({ length: 1000 }, () => a.chargeUnauthenticated());
  assert.equal(flood.filter(Boolean).length, 3, 'three within their budget, the rest over it');
  assert.deepEqual(Array.from({ length: 6 }, () => a.admitAuthenticated()), [true, true, true, true, true, false]);
  now += 200; // refills at its own rate: one more token after 1/5 s
  assert.equal(a.admitAuthenticated(), true);
  assert.equal(a.admitAuthenticated(), false);
});

test('refusals are logged once per kind per interval, then summarized with counts', () => {
  const lines: any[] = [];
  const r = new RefusalLog(createLogger('info', (l) => lines.push(JSON.parse(l))), 60_000);
  const kinds = ['too many new streams', 'authentication failed (no bearer token)'];
  for (let i = 0; i < 1000; i++) r.refused(kinds[i % 2], { peer: `p${i}` });
  assert.equal(lines.length, 2, 'the first of each kind, at once');
  r.flush();
  assert.equal(lines.length, 3);
  assert.equal(lines[2].msg, 'ads streams refused (summary)');
  assert.deepEqual(lines[2].refused, { [kinds[0]]: 500, [kinds[1]]: 500 });
  assert.equal(lines[2].notLogged, 998);
  r.flush();
  assert.equal(lines.length, 3, 'nothing to summarize: no line');
  // Kinds come partly from clients: their number is bounded too.
  for (let i = 0; i < 100; i++) r.refused(`kind ${i}`, {});
  r.flush();
  assert.ok(lines.length <= 3 + 33 + 1, `${lines.length} lines`);
  assert.equal(r.totals.get('other'), 100 - 32);
});

test('NACK messages are cut to 4 KiB of UTF-8 on a character boundary and marked', () => {
  assert.equal(boundNackMessage('short'), 'short');
  const exact = 'a'.repeat(MAX_NACK_MESSAGE_BYTES);
  assert.equal(boundNackMessage(exact), exact, 'at the limit: unchanged');
  const ascii = boundNackMessage('a'.repeat(1_000_000));
  assert.equal(ascii, `${'a'.repeat(MAX_NACK_MESSAGE_BYTES)}... [truncated: 1000000 bytes]`);
  const euro = boundNackMessage('€'.repeat(5000)); // 3 bytes each: 4096 is not a multiple of 3
  assert.ok(!euro.includes('\uFFFD'), 'no broken character');
  assert.equal(euro, `${'€'.repeat(1365)}... [truncated: 15000 bytes]`);
});

test('tokens: no lifetime beyond a year is issued; a removal refuses tokens issued up to its millisecond', async () => {
  const tokens = ProxyTokens.open(tmp());
  await assert.rejects(tokens.issue('ns/a-1', MAX_TOKEN_TTL_SECONDS + 1), /lifetime/);
  await assert.rejects(tokens.issue('ns/a-1', 0), /lifetime/);
  const now = Date.parse('2026-11-22T10:00:00.500Z');
  const year = await tokens.issue('ns/a-1', MAX_TOKEN_TTL_SECONDS, now);
  assert.deepEqual(await tokens.verify(year, now), { ok: true, nodeId: 'ns/a-1' });
  const before = await tokens.issue('ns/a-1', 3600, now - 1);
  const afterIt = await tokens.issue('ns/a-1', 3600, now + 1); // the same second as the removal
  const removedAt = (id: string) => (id === 'ns/a-1' ? now : undefined);
  const refused = { ok: false, reason: 'token issued before its workload was removed' };
  assert.deepEqual(await tokens.verify(before, now + 10, removedAt), refused);
  assert.deepEqual(await tokens.verify(afterIt, now + 10, removedAt), { ok: true, nodeId: 'ns/a-1' });
  const future = await tokens.issue('ns/a-1', 3600, now + 120_000);
  assert.deepEqual(await tokens.verify(future, now), { ok: false, reason: 'token issued in the future' });
});

test('removed workloads: recorded when a revision drops them, kept across restarts, written atomically', () => {
  const dir = tmp();
  const t0 = Date.parse('2026-11-22T10:00:00Z');
  const r = WorkloadRemovals.open(dir);
  assert.deepEqual(r.update(['ns/a-1', 'ns/b-1'], t0), [], 'the first revision removes nothing');
  assert.deepEqual(r.update(['ns/a-1'], t0 + 1000), ['ns/b-1']);
  assert.deepEqual(r.update(['ns/a-1', 'ns/b-1'], t0 + 2000), [], 'coming back is not a removal');
  assert.equal(r.removedAt('ns/b-1'), t0 + 1000, 'and does not clear the removal');
  assert.deepEqual(readdirSync(dir), ['workloads.json'], 'no temporary file left');
  // A restart: removals while stopped are noticed against the last known set.
  const again = WorkloadRemovals.open(dir);
  assert.equal(again.removedAt('ns/b-1'), t0 + 1000);
  assert.deepEqual(again.update(['ns/b-1'], t0 + 3000), ['ns/a-1']);
  // Past the longest token lifetime every token issued before a removal has expired: the entry goes.
  again.update(['ns/b-1'], t0 + (MAX_TOKEN_TTL_SECONDS + 3600) * 1000);
  assert.equal(again.removedAt('ns/b-1'), undefined);
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'workloads.json'), 'utf8')).removed, {});
  // A corrupt file is an error that names it, never a silent reset (which would revive old tokens).
  writeFileSync(path.join(dir, 'workloads.json'), '{"known": [');
  assert.throws(() => WorkloadRemovals.open(dir), (e: Error) => e.message.includes(path.join(dir, 'workloads.json')));
});
