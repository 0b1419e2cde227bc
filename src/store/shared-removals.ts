/**
 * Store: when each workload was removed from the configuration, `removals/<id>` (ISO time), for every replica: a
 * replica started after a removal (whose own workloads.json never saw the workload) still refuses the tokens issued
 * before it, as the replica that saw the removal does.
 */
import type { Logger } from '../app/logger.js';
import type { WorkloadRemovals } from '../server/workload-removals.js';
import type { EtcdStore } from './etcd-store.js';

const PREFIX = 'removals/';

export async function shareRemovals(store: EtcdStore, removals: WorkloadRemovals, log: Logger): Promise<void> {
  const put = (id: string, at: number) =>
    store.kv
      .put(PREFIX + id)
      .value(new Date(at).toISOString())
      .catch((err: Error) =>
        log.error('store: a workload removal was not shared', { workload: id, error: err.message }),
      );
  removals.onRemoved = (ids, at) => void Promise.all(ids.map((id) => put(id, at)));
  const shared = new Map<string, number>();
  await store.follow(
    PREFIX,
    (id, value) => {
      shared.set(id, Date.parse(value));
      removals.merge(id, Date.parse(value));
    },
    () => undefined,
  );
  // Removals only this replica knew (it ran alone before, or etcd was away) are shared too.
  for (const [id, at] of removals.entries()) if ((shared.get(id) ?? -Infinity) < at) await put(id, at);
}
