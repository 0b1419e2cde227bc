/**
 * The dependency index is updated by copying only what changes: it must equal an index built from scratch from
 * every proxy's dependencies, and the index it was updated from must stay as it was.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  emptyIndex,
  indexEntries,
  updatedIndex,
  type Dependencies,
  type DependencyIndex,
} from '../../src/ir/dependency-index.js';

const flat = (ix: DependencyIndex) =>
  [...indexEntries(ix)]
    .map(([k, e]) => [k, e.value, [...e.dependents].sort()] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : 1));

test('incremental updates equal a rebuild and leave the previous index untouched', () => {
  let seed = 7; // mulberry32: deterministic
  const rand = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
  const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
  const value = new Map(keys.map((k) => [k, 'v0']));
  const proxies = new Map<string, Dependencies>();
  const depsOf = () =>
    new Map(Array.from({ length: 1 + rand(20) }, () => keys[rand(keys.length)]).map((k) => [k, value.get(k)!]));
  let index = emptyIndex();
  for (let round = 0; round < 200; round++) {
    // Some keys change value: every proxy reading one is recompiled (as affectedProxies does); others come and go.
    for (let i = 0; i < rand(3); i++) value.set(keys[rand(keys.length)], `v${round}`);
    const changed = new Map<string, { old?: Dependencies; now?: Dependencies }>();
    for (const [id, deps] of proxies) {
      if ([...deps].some(([k, v]) => value.get(k) !== v) || rand(10) === 0) {
        const now = rand(8) === 0 ? undefined : depsOf();
        changed.set(id, { old: deps, ...(now ? { now } : {}) });
      }
    }
    for (let i = 0; i < rand(3); i++) changed.set(`p${round}-${i}`, { now: depsOf() });
    for (const [id, { now }] of changed) {
      if (now) proxies.set(id, now);
      else proxies.delete(id);
    }
    const before = flat(index);
    const next = updatedIndex(index, changed);
    assert.deepEqual(flat(index), before, `round ${round}: the previous index changed`);
    const rebuilt = updatedIndex(undefined, new Map([...proxies].map(([id, now]) => [id, { now }])));
    assert.deepEqual(flat(next), flat(rebuilt), `round ${round}`);
    index = next;
  }
});
