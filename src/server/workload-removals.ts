/**
 * Stage: server. When each workload was last removed from the configuration, kept in <state-dir>/workloads.json so
 * it survives restarts: tokens issued no later than a workload's removal are refused (see ProxyTokens.verify), so a
 * removed workload's old bootstrap does not work again when a workload of the same name comes back. The file also
 * holds the workloads of the last accepted revision, so a removal made while the control plane was stopped is
 * noticed at the next start. Entries older than the longest token lifetime are dropped: every token issued before
 * them has expired anyway.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { MAX_CLOCK_SKEW_SECONDS, MAX_TOKEN_TTL_SECONDS } from './proxy-auth.js';

interface FileShape {
  /** Workload ids of the last accepted revision. */
  known: string[];
  /** Workload id -> when it was last removed (ISO time). */
  removed: Record<string, string>;
}

export class WorkloadRemovals {
  private known: Set<string> | undefined;
  private readonly removed = new Map<string, number>();

  private constructor(readonly file: string) {}

  /** Loads the state file (none yet: nothing removed); a corrupt file is an error naming it, never ignored. */
  static open(stateDir: string): WorkloadRemovals {
    const r = new WorkloadRemovals(path.join(stateDir, 'workloads.json'));
    if (!existsSync(r.file)) return r;
    let data: FileShape;
    try {
      data = JSON.parse(readFileSync(r.file, 'utf8')) as FileShape;
      const ok = Array.isArray(data.known) && typeof data.removed === 'object' && data.removed !== null;
      if (!ok) throw new Error('unexpected shape');
    } catch (err) {
      throw new Error(
        `${r.file}: cannot read the removed workloads (${(err as Error).message}); restore it from a backup ` +
          '(deleting it lets old tokens of removed workloads work again)',
      );
    }
    r.known = new Set(data.known.filter((x) => typeof x === 'string'));
    for (const [id, at] of Object.entries(data.removed)) {
      const t = Date.parse(at);
      if (!Number.isNaN(t)) r.removed.set(id, t);
    }
    return r;
  }

  /** Called with the workloads a revision removed (replicas share them through the store). */
  onRemoved?: (ids: string[], at: number) => void;

  /** A removal seen elsewhere (another replica): kept if later than the one known here. */
  merge(id: string, at: number): void {
    if (Number.isNaN(at) || (this.removed.get(id) ?? -Infinity) >= at) return;
    this.removed.set(id, at);
    this.save();
  }

  /** Every removal known here, for sharing what this replica learnt alone. */
  entries(): [string, number][] {
    return [...this.removed];
  }

  /** When `id` was last removed (ms), if ever. */
  removedAt(id: string): number | undefined {
    return this.removed.get(id);
  }

  /**
   * Records the workloads of a newly accepted revision; returns those that were removed since the last one.
   * The file is written (atomically) only when something changed.
   */
  update(ids: Iterable<string>, now = Date.now()): string[] {
    const next = new Set(ids);
    const gone = this.known ? [...this.known].filter((id) => !next.has(id)) : [];
    for (const id of gone) this.removed.set(id, now);
    let changed = gone.length > 0 || !this.known || this.known.size !== next.size;
    const horizon = now - (MAX_TOKEN_TTL_SECONDS + MAX_CLOCK_SKEW_SECONDS) * 1000;
    for (const [id, at] of this.removed) {
      if (at < horizon) {
        this.removed.delete(id);
        changed = true;
      }
    }
    this.known = next;
    if (changed) this.save();
    if (gone.length > 0) this.onRemoved?.(gone.sort(), now);
    return gone.sort();
  }

  private save(): void {
    const removed = [...this.removed].sort(([a], [b]) => (a < b ? -1 : 1));
    const data: FileShape = {
      known: [...(this.known ?? [])].sort(),
      removed: Object.fromEntries(removed.map(([id, t]) => [id, new Date(t).toISOString()])),
    };
    writeFileAtomic(this.file, JSON.stringify(data, null, 1) + '\n');
  }
}

/** Write to a temporary file in the same directory, flush it to disk, then rename over the target. */
function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
