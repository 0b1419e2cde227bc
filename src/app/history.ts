/**
 * An append-only record of what happened, one JSON object per line in <state-dir>/history.jsonl: every revision
 * (accepted or rejected, with its errors) and, per proxy, when it came to hold a revision completely, when it
 * rejected something (NACK), and when it connected or went away. It answers the incident question "what
 * configuration did this proxy run at that moment", days later.
 */
import { appendFileSync, existsSync, readFileSync, renameSync, statSync } from 'node:fs';

export type HistoryEntry =
  | { t: string; kind: 'revision'; revision: string; status: 'accepted' | 'rejected'; errors: string[] }
  | { t: string; kind: 'synced'; proxy: string; revision: string }
  /** Proxies that held `from` completely and, their configuration being unchanged, now hold `revision`. */
  | { t: string; kind: 'relabelled'; revision: string; from: string; proxies: string[] }
  | { t: string; kind: 'behind'; proxy: string }
  | { t: string; kind: 'nack'; proxy: string; type: string; revision?: string; message: string }
  | { t: string; kind: 'connected' | 'disconnected'; proxy: string };

type Body<E> = E extends HistoryEntry ? Omit<E, 't'> : never;

/** Past this size the file is rotated: it becomes `<file>.1` (replacing the one before) and a new file starts. */
export const HISTORY_ROTATE_BYTES = 64 * 1024 * 1024;

export class HistoryLog {
  /** Lines not yet written: a push to many proxies is one write, not one per ACK. */
  private pending: string[] = [];

  constructor(
    readonly file: string,
    private readonly rotateBytes = HISTORY_ROTATE_BYTES,
  ) {}

  append(e: Body<HistoryEntry>, at = new Date()): void {
    if (this.pending.length === 0) setImmediate(() => this.flush());
    this.pending.push(JSON.stringify({ t: at.toISOString(), ...e }) + '\n');
  }

  flush(): void {
    if (this.pending.length === 0) return;
    const lines = this.pending.join('');
    this.pending = [];
    // Bounded on disk: the current file and one rotated file, so "what ran when" reaches back one file's worth.
    if (existsSync(this.file) && statSync(this.file).size + lines.length > this.rotateBytes) renameSync(this.file, `${this.file}.1`);
    appendFileSync(this.file, lines);
  }

  read(): HistoryEntry[] {
    this.flush();
    const text = [`${this.file}.1`, this.file].filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8')).join('\n');
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as HistoryEntry];
        } catch {
          return []; // a torn last line after a crash
        }
      });
  }
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
  }
  return out;
}
