/**
 * Stage: source. Policy revisions from a Git repository: a local repository (its branch tip, committed content only)
 * or a remote URL mirrored into the state directory and fetched at an interval and on demand. The revision id is the
 * commit SHA. Files are read from Git objects (`git ls-tree` + `git cat-file --batch`), never from a work tree, so
 * what is compiled is exactly what was committed.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Diagnostics, type Result } from '../diag/diagnostic.js';
import { SOURCE_LIMITS, isPolicyFile, type PolicySource, type SourceFile } from './source-file.js';

const run = promisify(execFile);

export interface GitSourceOptions {
  /** A local repository path or a remote URL. */
  repo: string;
  branch: string;
  /** Sub-directory of the repository holding the policies ('' for the root). */
  subdir: string;
  /** Where remote repositories are mirrored. */
  cacheDir: string;
}

function isRemote(repo: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/]+@[^:]+:/.test(repo);
}

async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' });
  return stdout;
}

export class GitSource {
  readonly remote: boolean;
  private readonly gitDir: string;

  constructor(readonly opts: GitSourceOptions) {
    this.remote = isRemote(opts.repo);
    this.gitDir = this.remote
      ? path.join(opts.cacheDir, `git-${createHash('sha256').update(opts.repo).digest('hex').slice(0, 12)}.git`)
      : path.resolve(opts.repo);
  }

  describe(): string {
    return `${this.opts.repo}#${this.opts.branch}${this.opts.subdir ? `:${this.opts.subdir}` : ''}`;
  }

  /** Brings remote commits in (no-op for a local repository). */
  async fetch(): Promise<void> {
    if (!this.remote) return;
    if (!existsSync(this.gitDir)) {
      mkdirSync(path.dirname(this.gitDir), { recursive: true });
      await run('git', ['clone', '--bare', '--quiet', '--single-branch', '--branch', this.opts.branch, this.opts.repo, this.gitDir]);
      return;
    }
    await git(this.gitDir, ['fetch', '--quiet', 'origin', `+refs/heads/${this.opts.branch}:refs/heads/${this.opts.branch}`]);
  }

  /** The commit SHA at the tip of the branch. */
  async head(): Promise<string> {
    return (await git(this.gitDir, ['rev-parse', '--verify', `refs/heads/${this.opts.branch}^{commit}`])).trim();
  }

  /** Resolves any revision expression (SHA, tag, branch) to a commit SHA. */
  async resolve(rev: string): Promise<string> {
    return (await git(this.gitDir, ['rev-parse', '--verify', `${rev}^{commit}`])).trim();
  }

  /** Reads the policy files of a commit. */
  async read(commit: string): Promise<Result<PolicySource>> {
    return readCommit(this.gitDir, commit, this.opts.subdir);
  }

  /** Commit time (ms) of a revision. */
  async commitTime(commit: string): Promise<number> {
    return Number((await git(this.gitDir, ['show', '-s', '--format=%ct', commit])).trim()) * 1000;
  }
}

/** Reads every policy file under `subdir` at `commit` of the repository at `gitDir`. */
export async function readCommit(gitDir: string, commit: string, subdir = ''): Promise<Result<PolicySource>> {
  const diags = new Diagnostics();
  const prefix = subdir.replace(/^\/+|\/+$/g, '');
  const listing = await git(gitDir, ['ls-tree', '-r', '-l', '-z', '--full-tree', commit, ...(prefix ? ['--', prefix] : [])]);
  const entries: { path: string; oid: string; size: number }[] = [];
  for (const rec of listing.split('\0')) {
    if (!rec) continue;
    const m = /^\d+ blob ([0-9a-f]+)\s+(\d+|-)\t(.+)$/.exec(rec);
    if (!m) continue;
    const full = m[3];
    const rel = prefix ? full.slice(prefix.length + 1) : full;
    if (rel.split('/').some((p) => p.startsWith('.')) || !isPolicyFile(rel)) continue;
    entries.push({ path: rel, oid: m[1], size: Number(m[2]) });
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : 1));
  const files: SourceFile[] = [];
  let total = 0;
  const wanted: typeof entries = [];
  for (const e of entries) {
    if (wanted.length >= SOURCE_LIMITS.maxFiles) {
      diags.report('CH0104', `more than ${SOURCE_LIMITS.maxFiles} policy files`, { location: { file: e.path, line: 1, column: 1, revision: commit } });
      break;
    }
    if (e.size > SOURCE_LIMITS.maxFileBytes || total + e.size > SOURCE_LIMITS.maxTotalBytes) {
      diags.report('CH0103', `file is ${e.size} bytes; the limit is ${SOURCE_LIMITS.maxFileBytes} per file and ${SOURCE_LIMITS.maxTotalBytes} in all`, {
        location: { file: e.path, line: 1, column: 1, revision: commit },
      });
      continue;
    }
    total += e.size;
    wanted.push(e);
  }
  const blobs = await catFiles(gitDir, wanted.map((e) => e.oid));
  wanted.forEach((e, i) => files.push({ path: e.path, text: blobs[i] }));
  return { value: { revision: commit, files }, diagnostics: diags.items };
}

/** `git cat-file --batch`: many blobs in one process. */
function catFiles(gitDir: string, oids: string[]): Promise<string[]> {
  if (oids.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    const p = spawn('git', ['cat-file', '--batch'], { cwd: gitDir });
    const chunks: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => chunks.push(c));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`git cat-file exited with ${code}`));
      const buf = Buffer.concat(chunks);
      const out: string[] = [];
      let pos = 0;
      for (let i = 0; i < oids.length; i++) {
        const nl = buf.indexOf(0x0a, pos);
        const header = buf.subarray(pos, nl).toString();
        const size = Number(header.split(' ')[2]);
        out.push(buf.subarray(nl + 1, nl + 1 + size).toString('utf8'));
        pos = nl + 1 + size + 1;
      }
      resolve(out);
    });
    p.stdin.end(oids.join('\n') + '\n');
  });
}
