/**
 * Stage: source. Watches a policy directory and calls back after changes settle: a short quiet period (debounce)
 * bounded by a maximum delay, so a burst of edits (a `git checkout`) compiles once, and a stream of edits to
 * different files still compiles at least every `maxMs`.
 *
 * Settled means every file that changed has kept the same size, mtime and inode for a whole quiet period. A file
 * still being written (an editor saving in chunks, a slow copy) is never compiled half-written: when the max delay
 * or the poll fires meanwhile, the compile waits for it. Editor swap and backup files are ignored.
 */
import { readdirSync, statSync, watch, type Dirent, type FSWatcher } from 'node:fs';
import path from 'node:path';

export interface Debouncer {
  trigger(): void;
  cancel(): void;
}

export function debounce(fn: () => void, quietMs: number, maxMs: number): Debouncer {
  let quiet: NodeJS.Timeout | undefined;
  let max: NodeJS.Timeout | undefined;
  const fire = (): void => {
    clearTimeout(quiet);
    clearTimeout(max);
    quiet = max = undefined;
    fn();
  };
  return {
    trigger() {
      clearTimeout(quiet);
      quiet = setTimeout(fire, quietMs);
      max ??= setTimeout(fire, Math.max(quietMs, maxMs));
    },
    cancel() {
      clearTimeout(quiet);
      clearTimeout(max);
      quiet = max = undefined;
    },
  };
}

/** What the watcher saw of a changed path: its stat stamp and when (monotonic ms) that stamp was first seen. */
export interface Seen {
  stamp: string;
  at: number;
}

/**
 * The paths of `seen` that are not settled at `now`: changed since they were seen, or seen less than `quietMs` ago.
 * Updates `seen` with what changed, so the next check measures the quiet period from the latest change.
 */
export function unsettledPaths(
  seen: Map<string, Seen>,
  stampOf: (p: string) => string,
  now: number,
  quietMs: number,
): string[] {
  const out: string[] = [];
  for (const [p, s] of seen) {
    const stamp = stampOf(p);
    if (stamp !== s.stamp) seen.set(p, { stamp, at: now });
    else if (now - s.at >= quietMs) continue;
    out.push(p);
  }
  return out;
}

/** A path's identity and content stamp; `-` when it does not exist (a deletion settles like any change). */
export function fileStamp(p: string): string {
  try {
    const st = statSync(p, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch {
    return '-';
  }
}

/** Names that are never policy: hidden files (.swp of vim, .#x of emacs, .git), backups and temporary files. */
export function isIgnoredName(name: string): boolean {
  if (name.startsWith('.') || name.endsWith('~') || name === '4913') return true; // 4913: vim's probe file
  return /^#.*#$/.test(name) || /\.(swp|swx|tmp|part|crdownload)$/.test(name);
}

/**
 * Watches `dir` and its subdirectories; `onChange` is debounced and runs only once every changed file settled.
 * One non-recursive watcher per directory: Node 20's `recursive` option on Linux rescans the whole tree in
 * JavaScript on every event, which at a few thousand files cost tens of milliseconds per write. Returns a function
 * that stops watching.
 */
export function watchDirectory(dir: string, onChange: () => void, quietMs: number, maxMs: number): () => void {
  const seen = new Map<string, Seen>();
  const d = debounce(
    () => {
      // A timer may fire a little before quietMs by performance.now(): libuv measures from its cached loop time.
      if (unsettledPaths(seen, fileStamp, performance.now(), quietMs * 0.75).length > 0) return d.trigger();
      seen.clear();
      onChange();
    },
    quietMs,
    maxMs,
  );
  const watchers = new Map<string, FSWatcher>();
  const add = (abs: string): void => {
    if (watchers.has(abs)) return;
    try {
      const w = watch(abs, (_event, name) => {
        if (name && isIgnoredName(String(name))) return;
        if (name) {
          const p = path.join(abs, String(name));
          seen.set(p, { stamp: fileStamp(p), at: performance.now() });
          addTree(p); // a new subdirectory gets its own watcher
        }
        d.trigger();
      });
      w.on('error', () => {
        w.close();
        watchers.delete(abs); // the directory went away; the poll below still notices changes
      });
      watchers.set(abs, w);
    } catch {
      // not a directory, or gone already
    }
  };
  const addTree = (abs: string): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(abs, { withFileTypes: true });
    } catch {
      return;
    }
    add(abs);
    for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.')) addTree(path.join(abs, e.name));
  };
  addTree(dir);
  // Safety net for file systems without reliable events (network mounts, some containers).
  const poll = setInterval(() => d.trigger(), 10_000);
  poll.unref();
  return () => {
    d.cancel();
    clearInterval(poll);
    for (const w of watchers.values()) w.close();
  };
}
