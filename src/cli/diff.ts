/**
 * `chancery diff --config DIR REV_A REV_B`: what a change to the policy repository does to the mesh, for a
 * pull-request comment. DIR is inside a Git repository; the policies are read from its commits, not the work tree.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { compileSource } from '../compiler.js';
import { formatHuman } from '../diag/format.js';
import { diffRevisions, formatDiffMarkdown } from '../explain/diff.js';
import { readCommit } from '../source/git.js';
import { command, DEFAULT_CONFIG_DIR, parse, UsageError } from './args.js';

const HELP = `Usage: chancery diff [--config DIR] REV_A REV_B [--format markdown|json]

Compares the policies under DIR at two Git revisions: connections allowed and removed, mTLS changes, routing
changes, mesh/certificate settings, and the proxies whose Envoy configuration changes. Exit 1 if a revision has errors.`;

export function runDiff(argv: string[]): Promise<number> {
  return command(HELP, argv, async () => {
    const { values, positionals } = parse(argv, { config: { type: 'string', default: DEFAULT_CONFIG_DIR }, format: { type: 'string', default: 'markdown' } }, true);
    if (positionals.length !== 2) throw new UsageError('diff takes two revisions');
    if (!['markdown', 'json'].includes(values.format!)) throw new UsageError(`--format: "${values.format}" is not markdown or json`);
    const dir = path.resolve(values.config!);
    let top: string;
    try {
      top = execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd: dir, encoding: 'utf8' }).trim();
    } catch {
      throw new UsageError(`${dir} is not inside a Git repository`);
    }
    const subdir = path.relative(top, dir);
    const compileAt = async (rev: string) => {
      let sha: string;
      try {
        sha = execFileSync('git', ['rev-parse', '--verify', `${rev}^{commit}`], { cwd: top, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      } catch {
        throw new UsageError(`unknown revision "${rev}"`);
      }
      const src = await readCommit(top, sha, subdir);
      const r = compileSource(src.value, src.diagnostics);
      if (!r.ok) console.error(`revision ${rev} (${sha.slice(0, 12)}) is rejected:\n${formatHuman(r.diagnostics, new Map(src.value.files.map((f) => [f.path, f.text])))}`);
      return r;
    };
    const a = await compileAt(positionals[0]);
    const b = await compileAt(positionals[1]);
    if (!a.ok || !b.ok) return 1;
    const d = diffRevisions(a, b);
    console.log(values.format === 'json' ? JSON.stringify(d, null, 2) : formatDiffMarkdown(d));
    return 0;
  });
}
