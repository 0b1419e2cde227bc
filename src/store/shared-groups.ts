/**
 * Store: WorkloadGroup token generations across replicas, `groups/<namespace/name>`: a group revoked on one
 * replica is revoked on all (its old tokens are refused everywhere, and each replica evicts the instances it serves
 * that registered with them). Every replica still keeps the generations in its <state-dir>/groups.json, so a
 * replica started while etcd is away refuses what it refused before.
 */
import type { Logger } from '../app/logger.js';
import type { Entry, GroupGenerations } from '../server/group-generations.js';
import type { EtcdStore } from './etcd-store.js';

const PREFIX = 'groups/';

export async function shareGroupGenerations(
  store: EtcdStore,
  generations: GroupGenerations,
  revokedElsewhere: (group: string) => void,
  log: Logger,
): Promise<void> {
  generations.onRevoked = (group, entry) => {
    store.kv
      .put(PREFIX + group)
      .value(JSON.stringify(entry))
      .catch((err: Error) => log.error('store: a revocation was not shared', { group, error: err.message }));
  };
  const put = (group: string, value: string) => {
    try {
      if (generations.merge(group, JSON.parse(value) as Entry)) revokedElsewhere(group);
    } catch (err) {
      log.warn('store: ignoring an unreadable group generation', { group, error: (err as Error).message });
    }
  };
  await store.follow(PREFIX, put, () => undefined);
  // Generations only this replica knew (revoked while it ran alone, or while etcd was away) are shared too.
  for (const [group, entry] of Object.entries(generations.all())) {
    const held = await store.kv.get(PREFIX + group).string();
    const shared = held ? (JSON.parse(held) as Entry).generation : 0;
    if (entry.generation > shared) generations.onRevoked(group, entry);
  }
}
