/**
 * Store: what one replica shares with the others through etcd, in one place for the control plane to wire: the
 * connection (etcd-store.ts), trust materialised before the state is opened (shared-trust.ts), certificates
 * (shared-svids.ts), registrations (shared-registrations.ts), proxy status (shared-status.ts), group revocations
 * (shared-groups.ts), workload removals (shared-removals.ts), and rotations done once with per-step acknowledgements
 * (shared-rotation.ts). Without `--store` none of this exists and the control plane is the embedded single process
 * it always was.
 */
import type { Authority } from '../ca/authority.js';
import type { Clock } from '../ca/clock.js';
import type { SvidManager } from '../ca/svids.js';
import type { Logger } from '../app/logger.js';
import { EtcdStore } from './etcd-store.js';
import { followTrust, localTrustHash, materialiseTrust, saveTrust } from './shared-trust.js';
import { acknowledge, announce, exclusively, waitForReplicas } from './shared-rotation.js';
import { SharedSvids } from './shared-svids.js';
import type { Registrations } from '../app/registrations.js';
import { SharedRegistrations } from './shared-registrations.js';
import type { ProxyRegistry } from '../server/proxy-registry.js';
import type { GroupGenerations } from '../server/group-generations.js';
import { shareGroupGenerations } from './shared-groups.js';
import type { WorkloadRemovals } from '../server/workload-removals.js';
import { shareRemovals } from './shared-removals.js';
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
      await announce(store);
      // A replica joining during a rotation step holds that step's trust, and no proxy is behind on it yet.
      await acknowledge(store, localTrustHash(o.stateDir));
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

  /** Follows trust changed by another replica (a rotation step); `changed` gets the new trust's hash. */
  followTrust(stateDir: string, changed: (hash: string) => void): Promise<void> {
    return followTrust(this.store, stateDir, changed);
  }

  /** Stores the state directory's trust (after an xDS CA rotation step here; the others follow it). */
  async shareTrust(stateDir: string): Promise<void> {
    await saveTrust(this.store, stateDir);
  }

  /** After a rotation step here: stores the trust, acknowledges it, and waits until every replica did. */
  async shareRotationStep(stateDir: string, timeoutMs: number): Promise<void> {
    const hash = await saveTrust(this.store, stateDir);
    await acknowledge(this.store, hash);
    await waitForReplicas(this.store, hash, timeoutMs);
  }

  /** This replica's proxies ACKed the trust `hash`. */
  acknowledge(hash: string): Promise<void> {
    return acknowledge(this.store, hash);
  }

  /** Runs `fn` under a store-wide lock: what must run once at a time across replicas (a root rotation). */
  exclusively<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return exclusively(this.store, name, fn);
  }

  /** Shares workload removals (their old tokens are refused by every replica, even one started later). */
  shareRemovals(removals: WorkloadRemovals): Promise<void> {
    return shareRemovals(this.store, removals, this.log);
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
