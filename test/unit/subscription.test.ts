/**
 * Subscription rules of the xDS protocol as tables.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyDelta, applySotw, emptySubscription, wants } from '../../src/server/subscription.js';

test('SotW: empty first request is wildcard and stays wildcard while lists stay empty', () => {
  const s = emptySubscription();
  applySotw(s, []);
  assert.ok(wants(s, 'anything'));
  assert.equal(applySotw(s, []), false);
  assert.ok(wants(s, 'anything'));
});

test('SotW: after names, an empty list unsubscribes from everything', () => {
  const s = emptySubscription();
  applySotw(s, ['a', 'b']);
  assert.ok(wants(s, 'a') && !wants(s, 'c'));
  assert.equal(applySotw(s, []), true);
  assert.ok(!wants(s, 'a') && !s.wildcard);
});

test('SotW: "*" is an explicit wildcard alongside names', () => {
  const s = emptySubscription();
  applySotw(s, ['*', 'a']);
  assert.ok(s.wildcard && wants(s, 'zzz'));
});

test('Delta: first request without names is wildcard; "*" can be unsubscribed', () => {
  const s = emptySubscription();
  applyDelta(s, [], []);
  assert.ok(s.wildcard);
  applyDelta(s, ['a'], ['*']);
  assert.ok(!s.wildcard && wants(s, 'a') && !wants(s, 'b'));
});

test('Delta: subscriptions accumulate by difference', () => {
  const s = emptySubscription();
  applyDelta(s, ['a'], []);
  assert.ok(!s.wildcard);
  applyDelta(s, ['b'], []);
  applyDelta(s, [], ['a']);
  assert.deepEqual([...s.names], ['b']);
  assert.equal(applyDelta(s, ['b'], []), false);
});
