#!/usr/bin/env node
// `npm start`: installs npm packages on a fresh clone if needed, creates a self-signed TLS credential for the example's
// ingress gateway (shop.example.com) in .chancery/credentials unless one is there, then runs the control plane on the
// bundled example mesh (state in .chancery/). Extra arguments go to `chancery serve`.
import { spawn, spawnSync } from 'node:child_process';
import { ensureDeps, root } from './ensure-deps.mjs';

process.chdir(root);
ensureDeps();
const credentials = '.chancery/credentials';
const create = ['credential', 'create', 'shop-example', '--host', 'shop.example.com', '--credentials-dir', credentials];
const made = spawnSync(process.execPath, ['bin/chancery.mjs', ...create, '--if-missing'], { stdio: 'inherit' });
if (made.status !== 0) process.exit(made.status ?? 1);
const serve = ['bin/chancery.mjs', 'serve', '--config', 'examples/mesh', '--state-dir', '.chancery'];
serve.push('--credentials-dir', credentials);
const child = spawn(process.execPath, [...serve, ...process.argv.slice(2)], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code) => process.exit(code ?? 0));
