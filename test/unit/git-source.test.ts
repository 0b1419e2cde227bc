/**
 * Git sources: a remote repository (here a file:// URL, the same clone-and-fetch path as https or ssh) is mirrored
 * into the state directory, fetched on demand, and read from commits, never from a work tree.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { GitSource } from '../../src/source/git.js';

test('a remote repository is mirrored, fetched and read at its commits', async () => {
  const upstream = mkdtempSync(path.join(os.tmpdir(), 'chancery-upstream-'));
  const git = (...a: string[]) => execFileSync('git', a, { cwd: upstream, encoding: 'utf8' }).trim();
  git('init', '-q', '-b', 'main');
  git('config', 'user.email', 't@example.com');
  git('config', 'user.name', 't');
  execFileSync('mkdir', ['-p', path.join(upstream, 'policies', 'nested')]);
  writeFileSync(path.join(upstream, 'policies', 'a.yaml'), 'a: 1\n');
  writeFileSync(path.join(upstream, 'policies', 'nested', 'b.yml'), 'b: 2\n');
  writeFileSync(path.join(upstream, 'policies', 'notes.txt'), 'not a policy\n');
  writeFileSync(path.join(upstream, 'outside.yaml'), 'outside: true\n');
  git('add', '.');
  git('commit', '-q', '-m', 'one');
  const first = git('rev-parse', 'HEAD');

  const src = new GitSource({ repo: `file://${upstream}`, branch: 'main', subdir: 'policies', cacheDir: mkdtempSync(path.join(os.tmpdir(), 'chancery-cache-')) });
  assert.ok(src.remote);
  await src.fetch();
  assert.equal(await src.head(), first);
  const r = await src.read(first);
  assert.equal(r.value.revision, first);
  assert.deepEqual(r.value.files.map((f) => [f.path, f.text]), [['a.yaml', 'a: 1\n'], ['nested/b.yml', 'b: 2\n']]);

  writeFileSync(path.join(upstream, 'policies', 'a.yaml'), 'a: 2\n');
  git('commit', '-q', '-am', 'two');
  writeFileSync(path.join(upstream, 'policies', 'a.yaml'), 'a: uncommitted\n');
  assert.equal(await src.head(), first, 'nothing new until fetched');
  await src.fetch();
  const second = await src.head();
  assert.notEqual(second, first);
  assert.equal((await src.read(second)).value.files[0].text, 'a: 2\n', 'committed content only');
  assert.equal((await src.read(first)).value.files[0].text, 'a: 1\n', 'older commits stay readable');
});
