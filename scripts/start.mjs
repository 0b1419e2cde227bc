#!/usr/bin/env node
// `npm start`: installs npm packages on a fresh clone if needed, then runs the control plane on the bundled
// example mesh (state in .chancery/). Extra arguments go to `chancery serve`.
import { spawn } from 'node:child_process';
import { ensureDeps, root } from './ensure-deps.mjs';

process.chdir(root);
ensureDeps();
const child = spawn(process.execPath, ['bin/chancery.mjs', 'serve', '--config', 'examples/mesh', '--state-dir', '.chancery', ...process.argv.slice(2)], {
  stdio: 'inherit',
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code) => process.exit(code ?? 0));
