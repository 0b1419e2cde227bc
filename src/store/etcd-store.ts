/**
 * Store: the connection of one replica to the shared etcd (v3 API), everything under `/chancery/`. It checks the
 * store key (a replica given another key file refuses to start), holds the replica's lease (kept alive; keys put
 * under it vanish when the replica dies) and says whether etcd is reachable. When a lease is lost (etcd was away
 * longer than its TTL) a new one is granted and every key the replica held is put again: replicas converge by
 * themselves when etcd returns. Knows nothing of what is stored; the shared-*.ts modules do.
 */
import { ExponentialBackoff, handleWhen, retry, type IBackoff } from 'cockatiel';
import { Etcd3, isRecoverableError, type IKeyValue, type Lease, type Namespace } from 'etcd3';
import type { Logger } from '../app/logger.js';
import { Sealer, StoreKeyError } from './sealed.js';

export const STORE_PREFIX = '/chancery/';
const KEY_CHECK = 'store-key-check';
const CHECK_TEXT = 'chancery store key';
export const DEFAULT_LEASE_TTL_SECONDS = 3;

/** `etcd://H:P[,H:P...]` -> the client's host URLs; an error names what is wrong. */
export function parseStoreUrl(url: string): string[] {
  const m = /^etcd:\/\/(.+)$/.exec(url);
  if (!m) throw new Error(`--store ${url}: expected etcd://HOST:PORT[,HOST:PORT...]`);
  return m[1].split(',').map((hp) => {
    if (!/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(hp)) {
      throw new Error(`--store ${url}: "${hp}" is not HOST:PORT`);
    }
    return `http://${hp}`;
  });
}

export interface StoreOptions {
  url: string;
  keyFile: string;
  /** This replica's name in the store (status shows it). */
  replica: string;
  leaseTtlSeconds?: number;
  log: Logger;
}

export class EtcdStore {
  private lease!: Lease;
  private leaseId = '';
  /** Keys this replica holds under its lease, and their values: put again under a new lease after a loss. */
  private readonly leased = new Map<string, string>();
  /** Leased keys whose last put or delete failed (etcd away): done again once it answers. */
  private readonly unsynced = new Set<string>();
  private closed = false;
  available = true;
  /** Called when etcd becomes unreachable (false) or reachable again with every leased key put back (true). */
  readonly onAvailability: ((up: boolean) => void)[] = [];
  /** Called after a new lease replaced a lost one and the keys were put back (others may have missed events). */
  readonly onRecovered: (() => void)[] = [];

  private constructor(
    private readonly client: Etcd3,
    readonly kv: Namespace,
    readonly sealer: Sealer,
    readonly replica: string,
    private readonly ttl: number,
    private readonly log: Logger,
  ) {}

  static async open(o: StoreOptions): Promise<EtcdStore> {
    const sealer = Sealer.fromFile(o.keyFile);
    const client = new Etcd3({
      hosts: parseStoreUrl(o.url),
      dialTimeout: 3000,
      // Calls fail fast while etcd is away (the callers keep serving); watches come back within a second.
      faultHandling: {
        global: retry(handleWhen(isRecoverableError), { maxAttempts: 1 }),
        // etcd3 types this as a backoff but calls .next() on it first: it wants the factory.
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }) as unknown as IBackoff<unknown>,
      },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 3000 }),
    });
    const kv = client.namespace(STORE_PREFIX);
    const s = new EtcdStore(client, kv, sealer, o.replica, o.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS, o.log);
    try {
      await s.checkKey();
      await s.newLease();
    } catch (err) {
      client.close();
      if (err instanceof StoreKeyError) throw err;
      throw new Error(`cannot reach the store ${o.url}: ${(err as Error).message}`);
    }
    return s;
  }

  /** The first replica writes a sealed check value; every later one must open it with its key file. */
  private async checkKey(): Promise<void> {
    const sealed = this.sealer.seal(this.full(KEY_CHECK), CHECK_TEXT);
    const r = await this.kv.if(KEY_CHECK, 'Create', '==', 0).then(this.kv.put(KEY_CHECK).value(sealed)).commit();
    if (r.succeeded) return;
    const held = await this.kv.get(KEY_CHECK).string();
    if (held !== null && this.sealer.open(this.full(KEY_CHECK), held) === CHECK_TEXT) return;
    throw new StoreKeyError(
      'the --store-key file is not the key this store was created with: give every replica the same key file',
    );
  }

  /** The full etcd key name of a store key (what sealed values are bound to). */
  full(key: string): string {
    return STORE_PREFIX + key;
  }

  seal(key: string, plain: string): string {
    return this.sealer.seal(this.full(key), plain);
  }

  /** Opens a sealed value of `key`; a value that does not open is an error naming the key. */
  open(key: string, sealed: string): string {
    const plain = this.sealer.open(this.full(key), sealed);
    if (plain === undefined) throw new StoreKeyError(`${this.full(key)}: the sealed value does not open with this key`);
    return plain;
  }

  private async newLease(): Promise<void> {
    const lease = this.kv.lease(this.ttl); // the namespace's: its puts are under the prefix
    const id = await lease.grant();
    this.lease = lease;
    this.leaseId = id;
    lease.on('keepaliveFailed', () => this.setAvailable(false));
    lease.on('keepaliveSucceeded', () => this.setAvailable(true));
    lease.on('lost', () => void this.replaceLease(lease));
  }

  /** The lease expired (etcd was away too long): grant a new one when etcd answers, and put every key back. */
  private async replaceLease(lost: Lease): Promise<void> {
    if (this.closed || lost !== this.lease) return;
    this.setAvailable(false);
    this.log.warn('store lease lost; its keys are put again once etcd answers', { replica: this.replica });
    for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 1000)) {
      try {
        await this.newLease();
        for (const [key, value] of this.leased) await this.lease.put(key).value(value);
        for (const key of this.unsynced) if (!this.leased.has(key)) this.unsynced.delete(key); // gone with the lease
        for (const key of this.leased.keys()) this.unsynced.delete(key);
        this.log.info('store reachable again; leased keys put back', { keys: this.leased.size });
        this.setAvailable(true);
        for (const f of this.onRecovered) f();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private setAvailable(up: boolean): void {
    if (this.available === up) return;
    this.available = up;
    if (!up) this.log.warn('store unreachable; serving what this replica has', { replica: this.replica });
    if (up) void this.resync();
    for (const f of this.onAvailability) f(up);
  }

  /** Puts and deletes that failed while etcd was away, done now (the lease survived, so nothing else would). */
  private async resync(): Promise<void> {
    for (const key of [...this.unsynced]) {
      const value = this.leased.get(key);
      const done = value === undefined ? this.deleteLeased(key) : this.putLeased(key, value);
      await done.catch(() => undefined);
    }
  }

  /** Puts `key` under this replica's lease (and remembers it, to put it back after a lease loss). */
  async putLeased(key: string, value: string): Promise<void> {
    this.leased.set(key, value);
    try {
      await this.lease.put(key).value(value);
      this.unsynced.delete(key);
    } catch (err) {
      this.unsynced.add(key);
      throw err;
    }
  }

  /** Deletes `key` only if it is still under this replica's lease (another replica may have taken it over). */
  async deleteLeased(key: string): Promise<boolean> {
    this.leased.delete(key);
    try {
      const r = await this.kv.if(key, 'Lease', '==', this.leaseId).then(this.kv.delete().key(key)).commit();
      this.unsynced.delete(key);
      return r.succeeded;
    } catch (err) {
      this.unsynced.add(key);
      throw err;
    }
  }

  /** Forgets a leased key without deleting it (another replica holds it now). */
  release(key: string): void {
    this.leased.delete(key);
    this.unsynced.delete(key);
  }

  /** Whether a key-value is held under this replica's current lease. */
  ownsKv(kv: IKeyValue): boolean {
    return String(kv.lease) === this.leaseId;
  }

  /**
   * Loads every key under `prefix` and then follows it: `put` and `del` get the key without the prefix. Resolves
   * once the current values were delivered.
   */
  async follow(
    prefix: string,
    put: (key: string, value: string, kv: IKeyValue) => void,
    del: (key: string) => void,
  ): Promise<void> {
    const res = await this.kv.getAll().prefix(prefix).exec();
    for (const kv of res.kvs) put(kv.key.toString().slice(prefix.length), kv.value.toString(), kv);
    const start = BigInt(res.header.revision) + 1n;
    const w = await this.kv.watch().prefix(prefix).startRevision(start.toString()).create();
    w.on('put', (kv) => put(kv.key.toString().slice(prefix.length), kv.value.toString(), kv));
    w.on('delete', (kv) => del(kv.key.toString().slice(prefix.length)));
    w.on('error', () => undefined); // reconnects by itself (watchBackoff)
    this.watchers.push(() => void w.cancel().catch(() => undefined));
  }

  private readonly watchers: (() => void)[] = [];

  async close(): Promise<void> {
    this.closed = true;
    for (const stop of this.watchers) stop();
    // Released, not revoked: keys under the lease stay its TTL more, so an Envoy reconnecting elsewhere is re-put
    // by its new replica before its registration would vanish.
    this.lease?.release();
    this.client.close();
  }
}
