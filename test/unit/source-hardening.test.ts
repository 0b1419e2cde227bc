/**
 * Sources under a bad day: a dangling symlink, a symlink out of the policy root, a file deleted while the tree is
 * read, a file written slowly in chunks. Each is a diagnostic naming the file (the revision is rejected and the last
 * good one keeps serving) or is waited out; none aborts the read or takes the configuration away.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ControlPlane } from '../../src/app/control-plane.js';
import { silentLogger } from '../../src/app/logger.js';
import type { Diagnostic } from '../../src/diag/diagnostic.js';
import { readDirectory, readDirectorySteps } from '../../src/source/directory.js';
import { isIgnoredName, unsettledPaths, watchDirectory, type Seen } from '../../src/source/watch.js';
import { waitFor } from '../support/http.js';
import { serviceEntry } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';

const tmp = (what: string) => mkdtempSync(path.join(os.tmpdir(), `chancery-${what}-`));
const errorsAt = (ds: readonly Diagnostic[]) =>
  ds.filter((d) => d.severity === 'error').map((d) => `${d.code} ${d.location?.file}`);

describe('reading a directory', () => {
  test('a dangling symlink is a diagnostic for that file; the rest is still read', () => {
    const root = tmp('dangling');
    writeFileSync(path.join(root, 'a.yaml'), serviceEntry('a', 'ns'));
    symlinkSync(path.join(root, 'gone.yaml'), path.join(root, 'broken.yaml'));
    symlinkSync(path.join(root, 'gone-dir'), path.join(root, 'policies')); // could have been a directory of policy
    symlinkSync(path.join(root, 'gone.md'), path.join(root, 'notes.md')); // says it is not policy: ignored
    const r = readDirectory(root);
    assert.deepEqual(errorsAt(r.diagnostics), ['CH0101 broken.yaml', 'CH0101 policies']);
    assert.deepEqual(r.value.files.map((f) => f.path), ['a.yaml']);
  });

  test('symlinks inside the root are followed; symlinks leaving it are refused and never read', () => {
    const outside = tmp('outside');
    writeFileSync(path.join(outside, 'root-key.pem'), 'SECRET KEY');
    writeFileSync(path.join(outside, 'stolen.yaml'), 'SECRET YAML');
    const root = tmp('links');
    mkdirSync(path.join(root, 'v2'));
    writeFileSync(path.join(root, 'v2', 'a.yaml'), serviceEntry('a', 'ns'));
    symlinkSync('v2', path.join(root, 'current')); // a directory inside: fine
    symlinkSync('v2/a.yaml', path.join(root, 'alias.yaml')); // a file inside: fine
    symlinkSync(path.join(outside, 'root-key.pem'), path.join(root, 'ca.yaml'));
    symlinkSync(outside, path.join(root, 'ext'));
    symlinkSync(path.join(outside, 'root-key.pem'), path.join(root, 'key.pem')); // not a policy name: not read at all
    symlinkSync('..', path.join(root, 'v2', 'up')); // back to the root: a loop
    const r = readDirectory(root);
    assert.deepEqual(errorsAt(r.diagnostics), ['CH0105 ca.yaml', 'CH0101 current/up', 'CH0105 ext', 'CH0101 v2/up']);
    assert.deepEqual(r.value.files.map((f) => f.path), ['alias.yaml', 'current/a.yaml', 'v2/a.yaml']);
    assert.ok(r.value.files.every((f) => !f.text.includes('SECRET')), 'nothing from outside the root was read');
  });

  test('a file deleted while the tree is read: the read starts over and gives the tree without it', () => {
    const root = tmp('deleted');
    for (let i = 0; i < 600; i++) writeFileSync(path.join(root, `f${String(i).padStart(3, '0')}.yaml`), `# ${i}\n`);
    const steps = readDirectorySteps(root);
    let r = steps.next(); // stops after a few hundred files, the rest listed but not yet read
    assert.equal(r.done, false);
    unlinkSync(path.join(root, 'f500.yaml'));
    while (!r.done) r = steps.next();
    assert.deepEqual(r.value.diagnostics, []);
    assert.equal(r.value.value.files.length, 599);
    assert.equal(r.value.value.revision, readDirectory(root).value.revision);
  });

  test('a tree that keeps changing under the read: a diagnostic naming the vanished file, never an exception', () => {
    const root = tmp('churn');
    for (let i = 0; i < 600; i++) writeFileSync(path.join(root, `f${String(i).padStart(3, '0')}.yaml`), `# ${i}\n`);
    const steps = readDirectorySteps(root);
    let next = 599;
    let r = steps.next();
    while (!r.done) {
      unlinkSync(path.join(root, `f${next--}.yaml`)); // always one the read listed and has not reached yet
      r = steps.next();
    }
    const errors = errorsAt(r.value.diagnostics);
    assert.ok(errors.length > 0 && errors.every((e) => /^CH0106 f5\d\d\.yaml$/.test(e)), JSON.stringify(errors));
  });
});

describe('the control plane on an unreadable file', () => {
  const root = tmp('cp-src');
  const state = tmp('cp-state');
  let cp: ControlPlane | undefined;
  after(async () => {
    await cp?.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  });

  test('at startup and later: the revision is rejected with the file listed; the last good keeps serving', async () => {
    writeFileSync(path.join(root, 'a.yaml'), serviceEntry('a', 'ns'));
    symlinkSync(path.join(root, 'nowhere.yaml'), path.join(root, 'b.yaml'));
    const host = '127.0.24.11';
    const xdsAddress = `${host}:${await freePort(host)}`;
    const settings = { configDir: root, stateDir: state, xdsAddress, maxNewStreamsPerSecond: 100, watch: false };
    cp = new ControlPlane(settings, silentLogger);
    await cp.start();
    assert.equal(cp.revisions.length, 1, 'a revision was read and judged at startup');
    assert.equal(cp.revisions[0].status, 'rejected');
    assert.deepEqual(errorsAt(cp.revisions[0].diagnostics), ['CH0101 b.yaml']);

    unlinkSync(path.join(root, 'b.yaml'));
    const good = await cp.reload();
    assert.equal(good.status, 'accepted');

    const outside = tmp('cp-outside');
    writeFileSync(path.join(outside, 'x.yaml'), serviceEntry('x', 'ns'));
    symlinkSync(path.join(outside, 'x.yaml'), path.join(root, 'x.yaml'));
    const bad = await cp.reload();
    assert.equal(bad.status, 'rejected');
    assert.deepEqual(errorsAt(bad.diagnostics), ['CH0105 x.yaml']);
    assert.equal(cp.current?.result.revision, good.revision, 'the last good revision keeps serving');
  });
});

describe('the watcher compiles only settled files', () => {
  test('a path is settled once its stamp held for a quiet period; a change restarts the wait', () => {
    const stamps = new Map([['/p/a.yaml', 's1']]);
    const seen = new Map<string, Seen>([['/p/a.yaml', { stamp: 's1', at: 0 }]]);
    const check = (now: number) => unsettledPaths(seen, (p) => stamps.get(p) ?? '-', now, 100);
    assert.deepEqual(check(50), ['/p/a.yaml'], 'seen 50 ms ago');
    assert.deepEqual(check(100), [], 'unchanged for the quiet period');
    stamps.set('/p/a.yaml', 's2'); // written again
    assert.deepEqual(check(150), ['/p/a.yaml']);
    assert.deepEqual(check(240), ['/p/a.yaml'], 'the quiet period counts from the last change seen');
    assert.deepEqual(check(250), []);
    for (const name of ['.a.yaml.swp', 'a.yaml~', '#a.yaml#', '4913', 'a.yaml.tmp']) {
      assert.ok(isIgnoredName(name), name);
    }
    assert.ok(!isIgnoredName('a.yaml'));
  });

  test('a file written slowly in chunks, for longer than the max delay, is never seen half-written', async () => {
    const dir = tmp('slow');
    const file = path.join(dir, 'big.yaml');
    const comments = Array.from({ length: 60 }, (_, i) => `# line ${i} ${'x'.repeat(40)}\n`).join('');
    const full = comments + serviceEntry('a', 'ns');
    const seen: string[] = [];
    // quiet 250 ms, max 300 ms: the writer below writes every ~10 ms for well over 300 ms.
    const stop = watchDirectory(dir, () => seen.push(readFileSync(file, 'utf8')), 250, 300);
    try {
      const chunks = full.match(/[\s\S]{1,64}/g)!;
      assert.ok(chunks.length >= 50);
      for (const c of chunks) {
        appendFileSync(file, c);
        await new Promise((r) => setTimeout(r, 10));
      }
      await waitFor(() => seen.includes(full), { timeoutMs: 10_000, what: 'the complete file to be compiled' });
      const partial = seen.filter((t) => t !== full).map((t) => t.length);
      assert.deepEqual(partial, [], `compiled half-written (bytes of ${full.length})`);
    } finally {
      stop();
    }
  });
});
