/**
 * Stage: source. Reads every `*.yaml` / `*.yml` file under a directory (hidden entries skipped) into a
 * PolicySource whose revision is a hash of the sorted paths and contents, so the same tree always gives the same
 * revision id whatever the file system's listing order.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { Diagnostics, type Result } from '../diag/diagnostic.js';
import { runSteps, runStepsInSlices } from '../util/steps.js';
import { SOURCE_LIMITS, isPolicyFile, type PolicySource, type SourceFile } from './source-file.js';

export function readDirectory(root: string): Result<PolicySource> {
  return runSteps(readSteps(root));
}

/** The same read, giving the event loop a turn every few hundred files (a server keeps serving meanwhile). */
export function readDirectoryInSlices(root: string): Promise<Result<PolicySource>> {
  return runStepsInSlices(readSteps(root));
}

function* readSteps(root: string): Generator<void, Result<PolicySource>> {
  const diags = new Diagnostics();
  const files: SourceFile[] = [];
  let total = 0;
  function* walk(rel: string): Generator<void> {
    let entries: string[];
    try {
      entries = readdirSync(path.join(root, rel)).sort();
    } catch (err) {
      diags.report('CH0101', `cannot read directory ${rel || '.'}: ${(err as Error).message}`, {
        location: { file: rel || '.', line: 1, column: 1 },
      });
      return;
    }
    for (const name of entries) {
      if (name.startsWith('.')) continue;
      const relPath = rel ? `${rel}/${name}` : name;
      const abs = path.join(root, relPath);
      const st = statSync(abs, { bigint: true });
      if (st.isDirectory()) {
        yield* walk(relPath);
        continue;
      }
      if (!st.isFile() || !isPolicyFile(name)) continue;
      if (files.length >= SOURCE_LIMITS.maxFiles) {
        diags.report('CH0104', `more than ${SOURCE_LIMITS.maxFiles} policy files`, { location: { file: relPath, line: 1, column: 1 } });
        return;
      }
      const size = Number(st.size);
      if (size > SOURCE_LIMITS.maxFileBytes || total + size > SOURCE_LIMITS.maxTotalBytes) {
        diags.report('CH0103', `file is ${size} bytes; the limit is ${SOURCE_LIMITS.maxFileBytes} per file and ${SOURCE_LIMITS.maxTotalBytes} in all`, {
          location: { file: relPath, line: 1, column: 1 },
        });
        continue;
      }
      total += size;
      files.push({ path: relPath, text: readText(abs, st) });
      if (files.length % 256 === 0) yield;
    }
  }
  yield* walk('');
  return { value: { revision: `dir:${contentHash(files)}`, files }, diagnostics: diags.items };
}

/**
 * A re-read after a change finds most files untouched: their text is reused while inode, size, mtime and ctime
 * (nanoseconds) are all unchanged, so a revision costs a stat per file rather than a read.
 */
const texts = new Map<string, { stamp: string; text: string }>();

function readText(abs: string, st: BigIntStats): string {
  const stamp = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  const hit = texts.get(abs);
  if (hit?.stamp === stamp) return hit.text;
  const text = readFileSync(abs, 'utf8');
  if (texts.size > 100_000) texts.clear();
  texts.set(abs, { stamp, text });
  return text;
}

/** A short, stable hash of a set of files (sorted by path). */
export function contentHash(files: readonly SourceFile[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    h.update(f.path).update('\0').update(f.text).update('\0');
  }
  return h.digest('hex').slice(0, 16);
}
