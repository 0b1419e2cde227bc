/**
 * Store: what one replica shares with the others through etcd, in one place for the control plane to wire: the
 * connection (etcd-store.ts), trust materialised before the state is opened (shared-trust.ts), certificates
 * (shared-svids.ts), registrations (shared-registrations.ts) and proxy status (shared-status.ts). Without
 * `--store` none of this exists and the control plane is the embedded single process it always was.
 */
import type { Authority } from '../ca/authority.js';
import type { Clock } from '../ca/clock.js';
import type { SvidManager } from '../ca/svids.js';
import type { Logger } from '../app/logger.js';
import { EtcdStore } from './etcd-store.js';
import { materialiseTrust } from './shared-trust.js';
import { SharedSvids } from './shared-svids.js';
import type { Registrations } from '../app/registrations.js';
import { SharedRegistrations } from './shared-registrations.js';
import type { ProxyRegistry } from '../server/proxy-registry.js';
import type { GroupGenerations } from '../server/group-generations.js';
import { shareGroupGenerations } from './shared-groups.js';
import { SharedStatus, type RemoteProxy } from './shared-status.js';

export interface StoreSettings {
  /** `etcd://HOST:PORT[,HOST:PORT...]` */
  url: string;
  /** The store key file (32+ random bytes), the same for every replica. */
  keyFile: string;
  /** This replica's name (status shows which replica serves a proxy). */
  replica: string;
  leaseTtlSeconds?: number;
}

export class Replica {
  private svidStore?: SharedSvids;
  private status?: SharedStatus;

  private constructor(
    readonly store: EtcdStore,
    private readonly log: Logger,
  ) {}

  /** Connects, checks the store key, and materialises the shared trust into `stateDir` (creating it if first). */
  static async join(
    s: StoreSettings,
    o: { stateDir: string; log: Logger; create: (dir: string) => Promise<unknown> },
  ): Promise<Replica> {
    const ttl = s.leaseTtlSeconds ? { leaseTtlSeconds: s.leaseTtlSeconds } : {};
    const store = await EtcdStore.open({ url: s.url, keyFile: s.keyFile, replica: s.replica, log: o.log, ...ttl });
    try {
      const how = await materialiseTrust(store, o.stateDir, o.create);
      o.log.info(how === 'created' ? 'store: trust material created' : 'store: joined existing trust', {
        store: s.url,
        replica: s.replica,
      });
    } catch (err) {
      await store.close();
      throw err;
    }
    return new Replica(store, o.log);
  }

  get name(): string {
    return this.store.replica;
  }

  get available(): boolean {
    return this.store.available;
  }

  /** Where the SvidManager gets its certificates: the shared ones. */
  svidSource(authority: Authority, clock: Clock, svids: () => SvidManager): SharedSvids {
    this.svidStore = new SharedSvids(this.store, authority, clock, () => svids().settingsNow);
    return this.svidStore;
  }

  /** Serves certificates other replicas stored (after a rotation there). */
  followSvids(svids: SvidManager): Promise<void> {
    return this.svidStore!.follow(svids);
  }

  /** Shares this replica's registered instances and follows the others' (the registry compiles the union). */
  followRegistrations(registrations: Registrations): Promise<void> {
    return new SharedRegistrations(this.store, this.log).follow(registrations);
  }

  /** Shares group revocations: `revokedElsewhere` runs when another replica revoked a group. */
  shareGroups(generations: GroupGenerations, revokedElsewhere: (group: string) => void): Promise<void> {
    return shareGroupGenerations(this.store, generations, revokedElsewhere, this.log);
  }

  /** Writes this replica's proxies' status (coalesced) and follows the others'. */
  async startStatus(registry: ProxyRegistry): Promise<void> {
    this.status = new SharedStatus(this.store, this.log);
    await this.status.start(registry);
  }

  /** Proxies served by other replicas (their last status), by id. */
  remoteProxies(): ReadonlyMap<string, RemoteProxy> {
    return this.status?.remote() ?? new Map();
  }

  close(): Promise<void> {
    this.status?.stop();
    return this.store.close();
  }
}
