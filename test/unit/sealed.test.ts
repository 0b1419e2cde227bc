/** Sealed store values: they open only with the same key file and under the same store key. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Sealer, StoreKeyError } from '../../src/store/sealed.js';

test('a sealed value opens under its own store key with the same key file, and nowhere else', () => {
  const bytes = randomBytes(32);
  const a = Sealer.fromBytes(bytes);
  const sealed = a.seal('/chancery/svids/x', 'PRIVATE KEY');
  assert.ok(!sealed.includes('PRIVATE KEY'));
  assert.equal(Sealer.fromBytes(Buffer.from(bytes)).open('/chancery/svids/x', sealed), 'PRIVATE KEY');
  assert.equal(a.open('/chancery/svids/y', sealed), undefined, 'swapped to another key');
  assert.equal(Sealer.fromBytes(randomBytes(32)).open('/chancery/svids/x', sealed), undefined, 'another key file');
  const tampered = sealed.slice(0, -4) + (sealed.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  assert.equal(a.open('/chancery/svids/x', tampered), undefined, 'tampered');
  assert.equal(a.open('/chancery/svids/x', 'garbage'), undefined);
  assert.notEqual(a.seal('k', 'v'), a.seal('k', 'v'), 'a fresh IV each time');
});

test('a store key shorter than 32 bytes is refused with a way to make one', () => {
  assert.throws(
    () => Sealer.fromBytes(randomBytes(16)),
    (e: Error) => e instanceof StoreKeyError && /store-key/.test(e.message),
  );
});
