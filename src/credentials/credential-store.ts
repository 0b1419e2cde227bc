/**
 * The credentials directory of a running control plane (`chancery serve --credentials-dir DIR`): reads the
 * credentials revisions name, keeps the last good version of each, and watches the files, so a certificate rotated
 * on disk reaches the gateways and sidecars that use it without a restart or a policy change. A half-written
 * rotation (a new tls.crt beside the old tls.key) never replaces the last good version: it is logged and the old one
 * keeps serving.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../app/logger.js';
import { debounce, type Debouncer } from '../source/watch.js';
import { readCredential, stateOf } from './read-credential.js';
import type { Credential, CredentialRead, CredentialState } from './read-credential.js';

export interface CredentialStoreOptions {
  dir: string;
  log: Logger;
  /** Called with the names whose good version changed. */
  onChange: (names: string[]) => void;
  /** Quiet period after a file event before reading (default 100 ms). */
  debounceMs?: number;
  /** Re-read everything this often, for file systems without reliable events (default 10 s). */
  pollMs?: number;
  now?: () => number;
}

export interface CredentialStatus {
  name: string;
  ok: boolean;
  problem?: string;
  /** What is being served (the last good version), if any. */
  serving?: { version: string; subject: string; dnsNames: string[]; notAfter: string };
}

export class CredentialStore {
  private readonly latest = new Map<string, CredentialRead>();
  private readonly good = new Map<string, Credential>();
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly refresh: Debouncer;
  private readonly poll: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly o: CredentialStoreOptions) {
    this.refresh = debounce(() => this.rescan(), o.debounceMs ?? 100, (o.debounceMs ?? 100) * 5);
    this.poll = setInterval(() => this.refresh.trigger(), o.pollMs ?? 10_000);
    this.poll.unref();
    this.watchTree();
  }

  /** Reads a credential now (a revision names it), remembers it, and watches it from then on. */
  check(name: string): CredentialState {
    const before = this.good.get(name)?.version;
    const r = this.read(name);
    this.watchTree();
    // Read before the watcher's own scan: the gateways serving the older version must hear of it all the same.
    if (r.ok && before !== undefined && r.credential.version !== before) {
      setImmediate(() => this.stopped || this.o.onChange([name]));
    }
    return stateOf(r, (this.o.now ?? Date.now)());
  }

  /** The last good version: what the gateways are served. */
  get(name: string): Credential | undefined {
    return this.good.get(name);
  }

  status(): CredentialStatus[] {
    return [...this.latest.keys()].sort().map((name) => {
      const r = this.latest.get(name)!;
      const g = this.good.get(name);
      const serving = g && { version: g.version, subject: g.subject, dnsNames: g.dnsNames, notAfter: g.notAfter };
      return {
        name,
        ok: r.ok,
        ...(r.ok ? {} : { problem: r.problem }),
        ...(serving ? { serving } : {}),
      };
    });
  }

  stop(): void {
    this.stopped = true;
    this.refresh.cancel();
    clearInterval(this.poll);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private read(name: string): CredentialRead {
    const r = readCredential(this.o.dir, name);
    this.latest.set(name, r);
    if (r.ok) this.good.set(name, r.credential);
    return r;
  }

  /** Re-reads every known credential; reports those whose served version changed. */
  private rescan(): void {
    if (this.stopped) return;
    const changed: string[] = [];
    for (const name of [...this.latest.keys()].sort()) {
      const before = this.good.get(name)?.version;
      const wasOk = this.latest.get(name)?.ok;
      const r = this.read(name);
      if (!r.ok && wasOk !== false) {
        const serving = this.good.has(name) ? 'the previous version keeps serving' : 'nothing is served for it';
        this.o.log.error('credential is invalid', { credential: name, problem: r.problem, serving });
      }
      if (r.ok && r.credential.version !== before) {
        changed.push(name);
        const { version, notAfter } = r.credential;
        this.o.log.info('credential loaded', { credential: name, version, notAfter });
      }
    }
    this.watchTree();
    if (changed.length > 0) this.o.onChange(changed);
  }

  /** The directory itself (credentials appear and disappear) and each known credential's own directory. */
  private watchTree(): void {
    if (this.stopped) return;
    const wanted = new Set([this.o.dir, ...[...this.latest.keys()].map((n) => path.join(this.o.dir, n))]);
    for (const [p, w] of this.watchers) {
      // Re-created each scan: a directory replaced by a rename is a new inode the old watcher does not see.
      if (p !== this.o.dir || !wanted.has(p)) {
        w.close();
        this.watchers.delete(p);
      }
    }
    for (const p of wanted) {
      if (this.watchers.has(p)) continue;
      try {
        const w = watch(p, () => this.refresh.trigger());
        w.on('error', () => {
          w.close();
          this.watchers.delete(p);
        });
        this.watchers.set(p, w);
      } catch {
        // missing (not created yet): the directory's watcher or the poll notices it
      }
    }
  }
}
