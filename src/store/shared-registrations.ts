/**
 * Store: registered instances across replicas, `registrations/<id>`, each under the lease of the replica serving
 * its stream: a dead replica's instances expire with its lease unless their Envoys reconnect elsewhere, and the
 * replica they reconnect to puts them again under its own lease. A replica deletes an instance it let go (grace
 * over, evicted) only while it still holds the key (a transaction on the lease), so it never removes one that moved
 * on. Every replica follows the prefix and compiles the union (app/registrations.ts applies the rules to it).
 */
import { isIP } from 'node:net';
import type { Logger } from '../app/logger.js';
import type { Instance, RegistrationSharing, Registrations } from '../app/registrations.js';
import type { EtcdStore } from './etcd-store.js';

const PREFIX = 'registrations/';

interface Stored {
  id: string;
  group: string;
  generation: number;
  address: string;
  registeredAt: string;
  replica: string;
}

export class SharedRegistrations implements RegistrationSharing {
  constructor(
    private readonly store: EtcdStore,
    private readonly log: Logger,
  ) {}

  claim(i: Instance): void {
    const v: Stored = {
      id: i.id,
      group: i.group,
      generation: i.generation,
      address: i.address,
      registeredAt: i.registeredAt,
      replica: this.store.replica,
    };
    this.store.putLeased(PREFIX + i.id, JSON.stringify(v)).catch((err: Error) => {
      // Kept in the leased set: it is put again once the store answers (etcd-store.ts).
      this.log.warn('store: registration not shared yet', { proxy: i.id, error: err.message });
    });
  }

  release(id: string): void {
    this.store.deleteLeased(PREFIX + id).catch((err: Error) => {
      this.log.warn("store: registration not removed (it expires with this replica's lease)", {
        proxy: id,
        error: err.message,
      });
    });
  }

  /** Follows every replica's instances into `registrations` (this replica's own current keys are skipped). */
  follow(registrations: Registrations): Promise<void> {
    registrations.sharing = this;
    return this.store.follow(
      PREFIX,
      (id, value, kv) => {
        if (this.store.ownsKv(kv)) return;
        const i = parse(value);
        if (i && i.id === id) registrations.applyRemote(i);
      },
      (id) => registrations.dropRemote(id),
    );
  }
}

function parse(value: string): Stored | undefined {
  try {
    const i = JSON.parse(value) as Stored;
    const ok =
      typeof i.id === 'string' &&
      typeof i.group === 'string' &&
      typeof i.address === 'string' &&
      isIP(i.address) !== 0 &&
      Number.isInteger(i.generation) &&
      typeof i.registeredAt === 'string' &&
      typeof i.replica === 'string';
    return ok ? i : undefined;
  } catch {
    return undefined;
  }
}
