/**
 * An append-only record of what happened, one JSON object per line: every revision (accepted or rejected, with its
 * errors) in <state-dir>/history.revisions.jsonl and, per proxy, when it came to hold a revision completely, when it
 * rejected something (NACK), and when it connected or went away, in <state-dir>/history.jsonl. It answers the
 * incident question "what configuration did this proxy run at that moment", days later.
 *
 * Revision records have a file of their own because their volume is set by operators, while proxy events are set
 * by proxies: however much a proxy sends (reconnects, NACKs), it can only rotate proxy events away, never the
 * record of which revisions existed. (Re-writing the latest revision records into each new file would still lose
 * them to a burst of rotations and would duplicate them on disk.) Reading merges both in time order.
 */
import { appendFileSync, existsSync, readFileSync, renameSync, statSync } from 'node:fs';

export type HistoryEntry =
  | { t: string; kind: 'revision'; revision: string; status: 'accepted' | 'rejected'; errors: string[] }
  | { t: string; kind: 'synced'; proxy: string; revision: string }
  /** Proxies that held `from` completely and, their configuration being unchanged, now hold `revision`. */
  | { t: string; kind: 'relabelled'; revision: string; from: string; proxies: string[] }
  | { t: string; kind: 'behind'; proxy: string }
  | { t: string; kind: 'nack'; proxy: string; type: string; revision?: string; message: string }
  | { t: string; kind: 'connected' | 'disconnected'; proxy: string }
  /** A workload that registered itself into a WorkloadGroup, and when it left (grace over, refused, evicted). */
  | { t: string; kind: 'registered'; proxy: string; group: string; address: string }
  | { t: string; kind: 'deregistered'; proxy: string; reason: string };

type Body<E> = E extends HistoryEntry ? Omit<E, 't'> : never;

/**
 * Past this size a file is rotated: it becomes `<file>.1` (replacing the one before) and a new file starts.
 * Proxy events and revision records are rotated separately.
 */
export const HISTORY_ROTATE_BYTES = 64 * 1024 * 1024;

/** The file of revision records that goes with a history file (history.jsonl -> history.revisions.jsonl). */
export function revisionsFile(file: string): string {
  return file.endsWith('.jsonl') ? `${file.slice(0, -'.jsonl'.length)}.revisions.jsonl` : `${file}.revisions`;
}

export class HistoryLog {
  /** Lines not yet written, per file: a push to many proxies is one write, not one per ACK. */
  private pending = { events: [] as string[], revisions: [] as string[] };
  readonly revisionsFile: string;

  constructor(
    readonly file: string,
    private readonly rotateBytes = HISTORY_ROTATE_BYTES,
  ) {
    this.revisionsFile = revisionsFile(file);
  }

  append(e: Body<HistoryEntry>, at = new Date()): void {
    if (this.pending.events.length === 0 && this.pending.revisions.length === 0) setImmediate(() => this.flush());
    const line = JSON.stringify({ t: at.toISOString(), ...e }) + '\n';
    (e.kind === 'revision' ? this.pending.revisions : this.pending.events).push(line);
  }

  flush(): void {
    const { events, revisions } = this.pending;
    this.pending = { events: [], revisions: [] };
    appendRotating(this.revisionsFile, revisions, this.rotateBytes);
    appendRotating(this.file, events, this.rotateBytes);
  }

  /** Every entry still on disk, oldest first (revision records and proxy events merged by time). */
  read(): HistoryEntry[] {
    this.flush();
    const revisions = readLines([`${this.revisionsFile}.1`, this.revisionsFile]);
    const all = [...revisions, ...readLines([`${this.file}.1`, this.file])];
    // Stable: within a file the order is kept; a revision record comes before proxy events of the same instant.
    return all.map((e, i) => ({ e, i, t: Date.parse(e.t) })).sort((a, b) => a.t - b.t || a.i - b.i).map((x) => x.e);
  }
}

/** Bounded on disk: the current file and one rotated file, so each reaches back one file's worth. */
function appendRotating(file: string, pending: string[], rotateBytes: number): void {
  if (pending.length === 0) return;
  const lines = pending.join('');
  if (existsSync(file) && statSync(file).size + Buffer.byteLength(lines) > rotateBytes) renameSync(file, `${file}.1`);
  appendFileSync(file, lines);
}

function readLines(files: string[]): HistoryEntry[] {
  return files
    .filter((f) => existsSync(f))
    .flatMap((f) => readFileSync(f, 'utf8').split('\n'))
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as HistoryEntry];
      } catch {
        return []; // a torn last line after a crash
      }
    });
}

export interface ProxyAtTime {
  proxy: string;
  at: string;
  /** The revision the proxy held completely at that moment, if any. */
  revision?: string;
  since?: string;
  /** Whether it was connected then (it keeps its last configuration while disconnected). */
  connected: boolean;
  /** A rejection that happened while it held that revision. */
  nacks: { t: string; type: string; message: string }[];
  /** Set when the proxy was a registered instance of a WorkloadGroup at that moment. */
  registered?: { group: string; address: string; since: string };
}

/** What the proxy ran at `at`, from the history. */
export function proxyAt(entries: readonly HistoryEntry[], proxy: string, at: Date): ProxyAtTime {
  const out: ProxyAtTime = { proxy, at: at.toISOString(), connected: false, nacks: [] };
  for (const e of entries) {
    if (Date.parse(e.t) > at.getTime()) break;
    if (e.kind === 'relabelled' && e.proxies.includes(proxy)) {
      out.revision = e.revision;
      out.since = e.t;
      out.nacks = [];
    }
    if (!('proxy' in e) || e.proxy !== proxy) continue;
    if (e.kind === 'connected') out.connected = true;
    if (e.kind === 'disconnected') out.connected = false;
    if (e.kind === 'synced') {
      out.revision = e.revision;
      out.since = e.t;
      out.nacks = [];
    }
    if (e.kind === 'nack') out.nacks.push({ t: e.t, type: e.type, message: e.message });
    if (e.kind === 'registered') out.registered = { group: e.group, address: e.address, since: e.t };
    if (e.kind === 'deregistered') delete out.registered;
  }
  return out;
}

type Registered = { id: string; group: string; address: string };

/** The instances registered into WorkloadGroups at `at`, to compile a past revision as it was then served. */
export function registeredAt(entries: readonly HistoryEntry[], at: Date): Registered[] {
  const live = new Map<string, Registered>();
  for (const e of entries) {
    if (Date.parse(e.t) > at.getTime()) break;
    if (e.kind === 'registered') live.set(e.proxy, { id: e.proxy, group: e.group, address: e.address });
    if (e.kind === 'deregistered') live.delete(e.proxy);
  }
  return [...live.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
