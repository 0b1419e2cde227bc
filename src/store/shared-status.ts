/**
 * Store: proxy status across replicas, `proxies/<id>/<replica>`: each replica writes its own record of each proxy it
 * served, under its lease (gone with the replica), so replicas never overwrite each other's view. Writes are
 * coalesced: every `intervalMs` the replica writes the proxies whose record changed, never one write per xDS
 * message. Every replica follows the prefix and shows, per proxy, the record of the replica it is connected to
 * (the newest connection), or else the newest disconnection: any replica's status API answers for every proxy.
 */
import type { Logger } from '../app/logger.js';
import type { ProxyRegistry, ProxyStatus, TypeStatus } from '../server/proxy-registry.js';
import type { EtcdStore } from './etcd-store.js';

const PREFIX = 'proxies/';

/** What every replica knows of a proxy served by another (the per-type detail stays on the serving replica). */
export interface RemoteProxy {
  id: string;
  replica: string;
  connected: boolean;
  variant: string;
  peer: string;
  connectedAt: string;
  disconnectedAt?: string;
  userAgent: string;
  revision?: string;
  lastSynced?: { revision: string; at: string };
  stale: number;
  /** Per type: what was sent and ACKed, whether a response is pending, the last NACK (as the serving replica has). */
  types: Record<string, TypeStatus>;
}

export class SharedStatus {
  /** Proxy id -> what this replica last wrote. */
  private readonly written = new Map<string, string>();
  /** Store key -> another replica's record. */
  private readonly records = new Map<string, RemoteProxy>();
  private merged?: Map<string, RemoteProxy>;
  private timer?: NodeJS.Timeout;
  private flushing = false;

  constructor(
    private readonly store: EtcdStore,
    private readonly log: Logger,
    private readonly intervalMs = 250,
  ) {}

  /** Follows the other replicas' proxies and starts writing this replica's. */
  async start(registry: ProxyRegistry): Promise<void> {
    await this.store.follow(
      PREFIX,
      (key, value, kv) => {
        this.merged = undefined;
        try {
          const p = JSON.parse(value) as RemoteProxy;
          const mine = this.store.ownsKv(kv) || p.replica === this.store.replica;
          if (!mine && key === `${p.id}/${p.replica}`) this.records.set(key, p);
        } catch {
          this.records.delete(key);
        }
      },
      (key) => {
        this.merged = undefined;
        this.records.delete(key);
      },
    );
    this.timer = setInterval(() => void this.flush(registry), this.intervalMs);
    this.timer.unref();
    // After a lease loss every key was put again, with the values last written.
    this.store.onRecovered.push(() => this.written.clear());
  }

  /** Per proxy id, the other replicas' best record: the newest connection, else the newest disconnection. */
  remote(): ReadonlyMap<string, RemoteProxy> {
    if (this.merged) return this.merged;
    const out = new Map<string, RemoteProxy>();
    const rank = (p: RemoteProxy) => (p.connected ? `1${p.connectedAt}` : `0${p.disconnectedAt ?? ''}`);
    for (const p of this.records.values()) {
      const had = out.get(p.id);
      if (!had || rank(p) > rank(had)) out.set(p.id, p);
    }
    this.merged = out;
    return out;
  }

  private async flush(registry: ProxyRegistry): Promise<void> {
    if (this.flushing || !this.store.available) return;
    this.flushing = true;
    try {
      const seen = new Set<string>();
      for (const p of registry.all()) {
        seen.add(p.id);
        const doc = JSON.stringify(summary(p, this.store.replica));
        if (this.written.get(p.id) === doc) continue;
        await this.store.putLeased(this.key(p.id), doc);
        this.written.set(p.id, doc);
      }
      for (const id of this.written.keys()) {
        if (seen.has(id)) continue; // forgotten here (a registered instance that left)
        await this.store.deleteLeased(this.key(id));
        this.written.delete(id);
      }
    } catch (err) {
      this.log.debug('store: proxy status not written yet', { error: (err as Error).message });
    } finally {
      this.flushing = false;
    }
  }

  private key(id: string): string {
    return `${PREFIX}${id}/${this.store.replica}`;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

function summary(p: ProxyStatus, replica: string): RemoteProxy {
  return {
    id: p.id,
    replica,
    connected: p.connected,
    variant: p.variant,
    peer: p.peer,
    connectedAt: p.connectedAt,
    ...(p.disconnectedAt ? { disconnectedAt: p.disconnectedAt } : {}),
    userAgent: p.userAgent,
    ...(p.revision ? { revision: p.revision } : {}),
    ...(p.lastSynced ? { lastSynced: p.lastSynced } : {}),
    stale: p.stale,
    types: p.types,
  };
}
