#!/usr/bin/env node
// `npm test`: installs what the tests need (npm packages, a pinned real Envoy, Debian's chromium and etcd-server)
// when missing, then runs every test file under test/ with node's built-in test runner. Extra arguments are passed
// to it (e.g. a file list).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ensureDeps, root } from './ensure-deps.mjs';

process.chdir(root);
ensureDeps();
const { ensureEnvoy } = await import('./ensure-envoy.mjs');
process.env.ENVOY_BIN = await ensureEnvoy();
const { ensureChromium } = await import('./install-chromium.mjs');
process.env.CHROMIUM_BIN = ensureChromium();
const { ensureEtcd } = await import('./ensure-etcd.mjs');
process.env.ETCD_BIN = ensureEtcd();

function find(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) return name === 'support' || name === 'testdata' ? [] : find(p);
      return name.endsWith('.test.ts') ? [p] : [];
    });
}

const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
const list = files.length > 0 ? files : find('test');
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...flags, ...list], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
