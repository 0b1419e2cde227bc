/**
 * Stage: server. The generation of each WorkloadGroup's tokens, in <state-dir>/groups.json: a group token is
 * accepted only while the generation it carries is its group's current one, so `chancery revoke --group` (one more
 * generation) makes every token issued before useless at once. The file is the one truth: the CLI writes it, the
 * server re-reads it whenever it changed on disk (checked at each group-token verification, which is rare: only
 * when a stream opens). A corrupt file is an error naming it, never read as "nothing revoked".
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { readStateFile, StateFileError, writeFileAtomic } from '../util/files.js';

export interface Entry {
  generation: number;
  revokedAt: string;
}

export class GroupGenerations {
  private entries = new Map<string, Entry>();
  private seen = '';

  private constructor(readonly file: string) {}

  static open(stateDir: string): GroupGenerations {
    const g = new GroupGenerations(path.join(stateDir, 'groups.json'));
    g.refresh();
    return g;
  }

  /** The current generation of `group` (0 until it is first revoked). */
  generation(group: string): number {
    this.refresh();
    return this.entries.get(group)?.generation ?? 0;
  }

  /** Every group ever revoked, with its generation and when. */
  all(): Record<string, Entry> {
    this.refresh();
    return Object.fromEntries([...this.entries].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  /** Makes every token of `group` issued so far useless; returns the new generation. */
  revoke(group: string, now = Date.now()): number {
    this.refresh();
    const generation = (this.entries.get(group)?.generation ?? 0) + 1;
    this.write(group, { generation, revokedAt: new Date(now).toISOString() });
    this.onRevoked?.(group, this.entries.get(group)!);
    return generation;
  }

  /** Called after a revocation here (replicas share it through the store). */
  onRevoked?: (group: string, entry: Entry) => void;

  /** A revocation made elsewhere (another replica): kept if newer. Returns whether the generation went up. */
  merge(group: string, entry: Entry): boolean {
    this.refresh();
    if (!Number.isInteger(entry.generation) || entry.generation <= this.generation(group)) return false;
    this.write(group, { generation: entry.generation, revokedAt: String(entry.revokedAt ?? '') });
    return true;
  }

  private write(group: string, entry: Entry): void {
    this.entries.set(group, entry);
    const groups = Object.fromEntries([...this.entries].sort(([a], [b]) => (a < b ? -1 : 1)));
    writeFileAtomic(this.file, JSON.stringify({ groups }, null, 1) + '\n');
    this.seen = '';
  }

  /** Re-reads the file when its size or modification time changed (another process revoked a group). */
  private refresh(): void {
    if (!existsSync(this.file)) {
      this.seen = 'none';
      this.entries = new Map();
      return;
    }
    const st = statSync(this.file);
    const mark = `${st.size}:${st.mtimeMs}:${st.ino}`;
    if (mark === this.seen) return;
    this.entries = parse(this.file, readStateFile(this.file));
    this.seen = mark;
  }
}

function parse(file: string, text: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  let data: { groups?: Record<string, Partial<Entry>> };
  try {
    data = JSON.parse(text) as typeof data;
  } catch (err) {
    throw new StateFileError(file, `is not JSON (${(err as Error).message})`, restore);
  }
  if (typeof data !== 'object' || data === null || typeof data.groups !== 'object' || data.groups === null) {
    throw new StateFileError(file, 'has no "groups" object', restore);
  }
  for (const [group, e] of Object.entries(data.groups)) {
    if (!Number.isInteger(e?.generation) || (e.generation as number) < 0) {
      throw new StateFileError(file, `group ${group} has no valid generation`, restore);
    }
    out.set(group, { generation: e.generation as number, revokedAt: String(e.revokedAt ?? '') });
  }
  return out;
}

const restore = 'restore it from a backup (without it, revoked group tokens would work again)';
