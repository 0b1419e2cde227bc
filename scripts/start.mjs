#!/usr/bin/env node
// `npm start`: installs npm packages on a fresh clone if needed, then runs the control plane on the bundled
// example mesh (state in .chancery/). Extra arguments go to `chancery serve`.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
process.chdir(root);
if (!existsSync('node_modules/.package-lock.json')) {
  console.log('installing npm packages (npm ci)...');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { stdio: 'inherit' });
}
const child = spawn(process.execPath, ['bin/chancery.mjs', 'serve', '--config', 'examples/mesh', '--state-dir', '.chancery', ...process.argv.slice(2)], {
  stdio: 'inherit',
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code) => process.exit(code ?? 0));
