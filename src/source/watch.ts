/**
 * Stage: source. Watches a policy directory and calls back after changes settle: a short quiet period (debounce)
 * bounded by a maximum delay, so a burst of edits (a `git checkout`) compiles once, and a stream of edits still
 * compiles at least every `maxMs`.
 */
import { readdirSync, watch, type Dirent, type FSWatcher } from 'node:fs';
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

/**
 * Watches `dir` and its subdirectories; `onChange` is debounced. One non-recursive watcher per directory: Node
 * 20's `recursive` option on Linux rescans the whole tree in JavaScript on every event, which at a few thousand
 * files cost tens of milliseconds per write. Returns a function that stops watching.
 */
export function watchDirectory(dir: string, onChange: () => void, quietMs: number, maxMs: number): () => void {
  const d = debounce(onChange, quietMs, maxMs);
  const watchers = new Map<string, FSWatcher>();
  const add = (abs: string): void => {
    if (watchers.has(abs)) return;
    try {
      const w = watch(abs, (_event, name) => {
        if (name && String(name).startsWith('.')) return; // hidden files (editor swap files, .git)
        if (name) addTree(path.join(abs, String(name))); // a new subdirectory gets its own watcher
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
