/**
 * State files that must never be seen half-written, and reads that always say which file failed.
 * A write goes to a temporary file beside the target, is fsynced, renamed over the target (atomic on POSIX), and
 * the directory is fsynced, so after a crash or a power cut the file holds the old content or the new, never a mix.
 */
import { closeSync, fchmodSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

/** A state file that is missing, unreadable or invalid; the message starts with the file's path. */
export class StateFileError extends Error {
  constructor(
    readonly file: string,
    problem: string,
    remedy?: string,
  ) {
    super(`${file}: ${problem}${remedy ? `; ${remedy}` : ''}`);
    this.name = 'StateFileError';
  }
}

/** What to do about a lost key or CA of a state directory that holds other state. */
export function restoreRemedy(reason: string): string {
  return (
    `restore it from a backup: ${reason}, so Chancery never generates a new one over existing state ` +
    '(to start over, move the state directory aside and redeploy every Envoy with a new bootstrap)'
  );
}

let seq = 0;

/** Replaces `file` atomically and durably with `data` (owner-only by default). */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${seq++}`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    fchmodSync(fd, mode); // exact, whatever the umask
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  syncDirectory(path.dirname(file));
}

/** Makes a rename in `dir` durable. */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads a state file as text; a failure names the file (and `missing` says what to do when it does not exist). */
export function readStateFile(file: string, missing?: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new StateFileError(file, 'is missing', missing);
    throw new StateFileError(file, `cannot be read (${e.code ?? e.message})`);
  }
}
