/**
 * Store: proxy status across replicas, `proxies/<id>`, each written by the replica serving the proxy under its
 * lease (gone with the replica). Writes are coalesced: every `intervalMs` the replica writes the proxies whose
 * summary changed, never one write per xDS message. A replica writes "disconnected" only while it still holds the
 * key, so a proxy that moved on to another replica is not shown disconnected by the one it left. Every replica
 * follows the prefix, so any replica's status API answers for every proxy, with the replica serving it.
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
  private readonly written = new Map<string, string>();
  private readonly others = new Map<string, RemoteProxy>();
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
      (id, value, kv) => {
        if (this.store.ownsKv(kv)) return;
        try {
          const p = JSON.parse(value) as RemoteProxy;
          if (p.id === id && typeof p.replica === 'string') this.others.set(id, p);
        } catch {
          this.others.delete(id);
        }
      },
      (id) => this.others.delete(id),
    );
    this.timer = setInterval(() => void this.flush(registry), this.intervalMs);
    this.timer.unref();
    // After a lease loss every key was put again, with the values last written.
    this.store.onRecovered.push(() => this.written.clear());
  }

  /** Proxies another replica serves (or served last), by id. */
  remote(): ReadonlyMap<string, RemoteProxy> {
    return this.others;
  }

  private async flush(registry: ProxyRegistry): Promise<void> {
    if (this.flushing || !this.store.available) return;
    this.flushing = true;
    try {
      for (const p of registry.all()) {
        const doc = JSON.stringify(summary(p, this.store.replica));
        if (this.written.get(p.id) === doc) continue;
        const key = PREFIX + p.id;
        if (p.connected) await this.store.putLeased(key, doc);
        else await this.putIfHeld(key, doc);
        this.written.set(p.id, doc);
      }
    } catch (err) {
      this.log.debug('store: proxy status not written yet', { error: (err as Error).message });
    } finally {
      this.flushing = false;
    }
  }

  /** A disconnected proxy's status, only over this replica's own record of it (or none). */
  private async putIfHeld(key: string, doc: string): Promise<void> {
    const other = this.others.get(key.slice(PREFIX.length));
    if (other?.connected) return this.store.release(key);
    await this.store.putLeased(key, doc);
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
