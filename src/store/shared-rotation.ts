/**
 * Store: what must happen once across replicas, and its per-step acknowledgements. A root rotation runs on the
 * replica it was asked of, under an etcd lock (a second one anywhere is refused while it runs: an explicit
 * operator action needs mutual exclusion, not a standing leader). After each step the rotating replica stores the
 * new trust; every replica takes it, republishes, waits until its own proxies ACKed, and acknowledges the step's
 * trust hash under `rotation-acks/<replica>`. The rotating replica goes on only once every live replica
 * (`replicas/<name>`, under their leases) acknowledged it.
 */
import type { EtcdStore } from './etcd-store.js';

const REPLICAS = 'replicas/';
const ACKS = 'rotation-acks/';

/** Announces this replica (under its lease): the rotating replica waits for the acknowledgement of each one. */
export function announce(store: EtcdStore): Promise<void> {
  return store.putLeased(REPLICAS + store.replica, JSON.stringify({ name: store.replica }));
}

/** Acknowledges that this replica's proxies ACKed the trust whose hash is `hash`. */
export function acknowledge(store: EtcdStore, hash: string): Promise<void> {
  return store.putLeased(ACKS + store.replica, hash);
}

/** Resolves once every live replica acknowledged `hash`; rejects after `timeoutMs`, naming the ones behind. */
export async function waitForReplicas(store: EtcdStore, hash: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const names = Object.keys(await store.kv.getAll().prefix(REPLICAS).strings()).map((k) => k.slice(REPLICAS.length));
    const acks = await store.kv.getAll().prefix(ACKS).strings();
    const behind = names.filter((n) => acks[ACKS + n] !== hash);
    if (behind.length === 0) return;
    if (Date.now() > deadline) throw new Error(`replicas did not converge on the rotation step: ${behind.join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `fn` while holding the store-wide lock `name`; refuses at once if another replica holds it. */
export async function exclusively<T>(store: EtcdStore, name: string, fn: () => Promise<T>): Promise<T> {
  const lock = store.kv.lock(`locks/${name}`).ttl(10);
  try {
    await lock.acquire();
  } catch (err) {
    throw new Error(`${name} is already running on another replica (${(err as Error).message})`);
  }
  try {
    return await fn();
  } finally {
    await lock.release().catch(() => undefined);
  }
}
