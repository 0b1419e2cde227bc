/**
 * Stage: source. Watches a policy directory and calls back after changes settle: a short quiet period (debounce)
 * bounded by a maximum delay, so a burst of edits (a `git checkout`) compiles once, and a stream of edits still
 * compiles at least every `maxMs`.
 */
import { watch, type FSWatcher } from 'node:fs';

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

/** Watches `dir` recursively; `onChange` is debounced. Returns a function that stops watching. */
export function watchDirectory(dir: string, onChange: () => void, quietMs: number, maxMs: number): () => void {
  const d = debounce(onChange, quietMs, maxMs);
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { recursive: true }, (_event, name) => {
      if (name && /(^|\/)\./.test(String(name))) return; // hidden files (editor swap files, .git)
      d.trigger();
    });
  } catch {
    watcher = undefined;
  }
  // Safety net for file systems without reliable events (network mounts, some containers).
  const poll = setInterval(() => d.trigger(), 10_000);
  poll.unref();
  return () => {
    d.cancel();
    clearInterval(poll);
    watcher?.close();
  };
}
