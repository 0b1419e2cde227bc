/**
 * Stage: source. Reads every `*.yaml` / `*.yml` file under a directory (hidden entries skipped) into a
 * PolicySource whose revision is a hash of the sorted paths and contents, so the same tree always gives the same
 * revision id whatever the file system's listing order.
 *
 * A read never throws for what is in the tree: a file that cannot be read is a diagnostic naming it, so the revision
 * is rejected with the file listed and the last good one keeps serving. Symlinks are followed only while they stay
 * inside the policy root (a link to the CA key must not end up in a parse error's excerpt). A file that vanishes
 * while the tree is read means the tree changed under us: the read starts over, a few times at most.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { realpathSync, statSync, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { Diagnostics, type Diagnostic, type Result } from '../diag/diagnostic.js';
import { runSteps, runStepsInSlices } from '../util/steps.js';
import { SOURCE_LIMITS, isPolicyFile, type PolicySource, type SourceFile } from './source-file.js';

export function readDirectory(root: string): Result<PolicySource> {
  return runSteps(readDirectorySteps(root));
}

/** The same read, giving the event loop a turn every few hundred files (a server keeps serving meanwhile). */
export function readDirectoryInSlices(root: string): Promise<Result<PolicySource>> {
  return runStepsInSlices(readDirectorySteps(root));
}

/** How many times a read starts over because files vanished under it before it reports them. */
const READ_ATTEMPTS = 3;

/** The read as steps (see util/steps.ts); exported so tests can change the tree between two steps. */
export function* readDirectorySteps(root: string): Generator<void, Result<PolicySource>> {
  for (let attempt = 1; ; attempt++) {
    const r = yield* readOnce(root, attempt === READ_ATTEMPTS);
    if (r !== 'changed') return r;
  }
}

/** Thrown inside one read when the tree changed under it (a file listed a moment ago is gone or replaced). */
class TreeChanged extends Error {}

const ENOENT = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

function* readOnce(root: string, last: boolean): Generator<void, Result<PolicySource> | 'changed'> {
  const diags = new Diagnostics();
  const files: SourceFile[] = [];
  const at = (file: string) => ({ location: { file, line: 1, column: 1 } });
  let total = 0;
  let sinceYield = 0;
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch (err) {
    diags.report('CH0101', `cannot read directory .: ${(err as Error).message}`, at('.'));
    return { value: { revision: `dir:${contentHash(files, diags.items)}`, files }, diagnostics: diags.items };
  }
  const rootPrefix = realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep;
  const inside = (real: string) => real === realRoot || real.startsWith(rootPrefix);

  /** Reads one policy file; `real` is a path with no symlink in it (the tree's own or a resolved link's). */
  const addFile = (relPath: string, real: string, st: BigIntStats): void => {
    if (files.length >= SOURCE_LIMITS.maxFiles) {
      diags.report('CH0104', `more than ${SOURCE_LIMITS.maxFiles} policy files`, at(relPath));
      throw new TooMany();
    }
    const size = Number(st.size);
    if (size > SOURCE_LIMITS.maxFileBytes || total + size > SOURCE_LIMITS.maxTotalBytes) {
      const { maxFileBytes, maxTotalBytes } = SOURCE_LIMITS;
      const limits = `the limit is ${maxFileBytes} per file and ${maxTotalBytes} in all`;
      diags.report('CH0103', `file is ${size} bytes; ${limits}`, at(relPath));
      return;
    }
    let text: string;
    try {
      text = readText(real, st);
    } catch (err) {
      if (err instanceof TreeChanged || ENOENT(err)) {
        if (!last) throw new TreeChanged();
        const message = `${relPath} changed or vanished while the tree was read; it is read again on the next change`;
        diags.report('CH0106', message, at(relPath));
        return;
      }
      diags.report('CH0101', `cannot read ${relPath}: ${(err as Error).message}`, at(relPath));
      return;
    }
    total += size;
    files.push({ path: relPath, text });
  };

  /** A symlink: followed to a file or directory inside the root; anything else is a diagnostic or ignored. */
  const followLink = (relPath: string, abs: string, name: string, ancestors: ReadonlySet<string>) => {
    // A name that says "not policy" (notes.md) is ignored wherever it leads; .yaml or extensionless may hold policy.
    const mayHoldPolicy = isPolicyFile(name) || path.extname(name) === '';
    let real: string;
    let st: BigIntStats;
    try {
      real = realpathSync(abs);
      st = statSync(real, { bigint: true });
    } catch (err) {
      if (!mayHoldPolicy) return undefined;
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT' ? 'it leads to nothing (a dangling symlink)'
        : code === 'ELOOP' ? 'it is a symlink loop'
        : (err as Error).message;
      diags.report('CH0101', `cannot read ${relPath}: ${why}`, at(relPath));
      return undefined;
    }
    if (!st.isDirectory() && !(st.isFile() && isPolicyFile(name))) return undefined;
    if (!inside(real)) {
      const message = `${relPath} is a symlink to ${real}, outside the policy root ${realRoot}; it is not read`;
      diags.report('CH0105', message, at(relPath));
      return undefined;
    }
    if (st.isFile()) {
      addFile(relPath, real, st);
      return undefined;
    }
    if (ancestors.has(real)) {
      diags.report('CH0101', `cannot read ${relPath}: it links back to a directory above it (a loop)`, at(relPath));
      return undefined;
    }
    return { dir: real } as const;
  };

  function* walk(rel: string, realDir: string, ancestors: ReadonlySet<string>): Generator<void> {
    let entries: string[];
    try {
      entries = readdirSync(realDir).sort();
    } catch (err) {
      if (rel && ENOENT(err) && !last) throw new TreeChanged(); // it was removed after its parent was listed
      diags.report('CH0101', `cannot read directory ${rel || '.'}: ${(err as Error).message}`, at(rel || '.'));
      return;
    }
    const within = new Set(ancestors).add(realDir);
    for (const name of entries) {
      if (name.startsWith('.')) continue;
      const relPath = rel ? `${rel}/${name}` : name;
      const abs = path.join(realDir, name);
      let st: BigIntStats;
      try {
        st = lstatSync(abs, { bigint: true });
      } catch (err) {
        if (!ENOENT(err)) {
          diags.report('CH0101', `cannot read ${relPath}: ${(err as Error).message}`, at(relPath));
          continue;
        }
        if (!last) throw new TreeChanged();
        const message = `${relPath} vanished while the tree was read; it is read again on the next change`;
        diags.report('CH0106', message, at(relPath));
        continue;
      }
      if (st.isSymbolicLink()) {
        const target = followLink(relPath, abs, name, within);
        if (target) yield* walk(relPath, target.dir, within);
      } else if (st.isDirectory()) {
        yield* walk(relPath, abs, within);
      } else if (st.isFile() && isPolicyFile(name)) {
        addFile(relPath, abs, st);
      }
      if (++sinceYield >= 256) {
        sinceYield = 0;
        yield;
      }
    }
  }
  try {
    yield* walk('', realRoot, new Set());
  } catch (err) {
    if (err instanceof TreeChanged) return 'changed';
    if (!(err instanceof TooMany)) throw err;
  }
  return { value: { revision: `dir:${contentHash(files, diags.items)}`, files }, diagnostics: diags.items };
}

class TooMany extends Error {}

/**
 * A re-read after a change finds most files untouched: their text is reused while inode, size, mtime and ctime
 * (nanoseconds) are all unchanged, so a revision costs a stat per file rather than a read.
 */
const texts = new Map<string, { stamp: string; text: string }>();

const stampOf = (st: BigIntStats) => `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

/**
 * The text of `real`, which was stat'ed as `st`. Opened without following a final symlink and checked to be the
 * same inode, so a file swapped for a link (or another file) between the check and the read is never read.
 */
function readText(real: string, st: BigIntStats): string {
  const stamp = stampOf(st);
  const hit = texts.get(real);
  if (hit?.stamp === stamp) return hit.text;
  let fd: number;
  try {
    fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new TreeChanged();
    throw err;
  }
  try {
    const now = fstatSync(fd, { bigint: true });
    if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev) throw new TreeChanged();
    const text = readFileSync(fd, 'utf8');
    if (texts.size > 100_000) texts.clear();
    texts.set(real, { stamp: stampOf(now), text });
    return text;
  } finally {
    closeSync(fd);
  }
}

/**
 * A short, stable hash of a set of files (sorted by path) and of the files that could not be read: a tree with an
 * unreadable file is another revision than the same tree without it.
 */
export function contentHash(files: readonly SourceFile[], unread: readonly Diagnostic[] = []): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    h.update(f.path).update('\0').update(f.text).update('\0');
  }
  for (const d of unread) h.update('!').update(d.code).update(d.location?.file ?? '').update('\0');
  return h.digest('hex').slice(0, 16);
}
