/**
 * The history log: what a proxy ran at a moment, across per-proxy `synced` entries and the one `relabelled` entry
 * that covers every proxy whose configuration a revision left unchanged; and the file stays bounded (rotated to
 * one previous file, both read back in order) while revision records, in a file of their own, survive any volume of
 * proxy events.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { HistoryLog, proxyAt } from '../../src/app/history.js';
import { runHistory } from '../../src/cli/history.js';

const at = (s: number) => new Date(Date.parse('2026-11-22T10:00:00Z') + s * 1000);

test('what a proxy ran: synced entries, and relabelled entries for proxies whose configuration did not change', () => {
  const log = new HistoryLog(path.join(mkdtempSync(path.join(os.tmpdir(), 'chancery-history-')), 'history.jsonl'));
  log.append({ kind: 'connected', proxy: 'shop/a-1' }, at(0));
  log.append({ kind: 'synced', proxy: 'shop/a-1', revision: 'r1' }, at(1));
  log.append({ kind: 'nack', proxy: 'shop/a-1', type: 'LDS', revision: 'r1', message: 'bad' }, at(2));
  log.append({ kind: 'relabelled', revision: 'r2', from: 'r1', proxies: ['shop/a-1', 'shop/b-1'] }, at(3));
  log.append({ kind: 'synced', proxy: 'shop/b-1', revision: 'r3' }, at(4));
  const entries = log.read();
  assert.deepEqual(proxyAt(entries, 'shop/a-1', at(2.5)), { proxy: 'shop/a-1', at: at(2.5).toISOString(), connected: true, revision: 'r1', since: at(1).toISOString(), nacks: [{ t: at(2).toISOString(), type: 'LDS', message: 'bad' }] });
  const later = proxyAt(entries, 'shop/a-1', at(10));
  assert.equal(later.revision, 'r2', 'relabelled to r2 although nothing was sent');
  assert.deepEqual(later.nacks, [], 'a rejection of r1 is not one of r2');
  assert.equal(proxyAt(entries, 'shop/b-1', at(10)).revision, 'r3');
  assert.equal(proxyAt(entries, 'shop/c-1', at(10)).revision, undefined);
});

test('the history file is rotated past its size limit; both files are read, oldest first', () => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'chancery-history-')), 'history.jsonl');
  const log = new HistoryLog(file, 2000);
  for (let i = 0; i < 60; i++) {
    log.append({ kind: 'synced', proxy: `shop/p-${i}`, revision: `r${i}` }, at(i));
    log.flush();
  }
  assert.ok(existsSync(`${file}.1`), 'rotated');
  assert.ok(statSync(file).size <= 2000 && statSync(`${file}.1`).size <= 2000, 'each file stays under the limit');
  const entries = log.read();
  assert.ok(entries.length >= 20 && entries.length < 60, `older entries beyond two files are dropped (${entries.length} kept)`);
  const times = entries.map((e) => Date.parse(e.t));
  assert.deepEqual(times, [...times].sort((a, b) => a - b), 'in order across the two files');
  const last = entries[entries.length - 1];
  assert.ok(last.kind === 'synced' && last.proxy === 'shop/p-59', 'the newest entry is last');
});

test('proxy events, however many, never rotate revision records away; chancery history still answers', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chancery-history-'));
  const file = path.join(dir, 'history.jsonl');
  const log = new HistoryLog(file, 4000);
  log.append({ kind: 'revision', revision: 'r1', status: 'accepted', errors: [] }, at(0));
  log.append({ kind: 'synced', proxy: 'shop/a-1', revision: 'r1' }, at(1));
  log.append({ kind: 'revision', revision: 'r2', status: 'rejected', errors: ['mesh.yaml:1:1 CH0001 bad'] }, at(2));
  // One workload NACKing in a loop: far more than both files' worth of events.
  for (let i = 0; i < 500; i++) {
    log.append({ kind: 'nack', proxy: 'shop/evil-1', type: 'CDS', message: 'x'.repeat(200) }, at(3 + i / 1000));
    log.flush();
  }
  const entries = log.read();
  assert.deepEqual(
    entries.filter((e) => e.kind === 'revision').map((e) => e.kind === 'revision' && `${e.revision} ${e.status}`),
    ['r1 accepted', 'r2 rejected'],
    'every revision record is still there',
  );
  assert.ok(statSync(file).size <= 4000 && statSync(`${file}.1`).size <= 4000, 'proxy events stay bounded');
  const times = entries.map((e) => Date.parse(e.t));
  assert.deepEqual(times, [...times].sort((a, b) => a - b), 'revision records and proxy events merged in time order');
  // The CLI reads the same files.
  log.append({ kind: 'synced', proxy: 'shop/a-1', revision: 'r1' }, at(5));
  log.flush();
  const out: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  try {
    assert.equal(await runHistory(['--proxy', 'shop/a-1', '--at', at(10).toISOString(), '--state-dir', dir]), 0);
  } finally {
    console.log = orig;
  }
  assert.match(out.join('\n'), /shop\/a-1 at .*: revision r1/);
});
