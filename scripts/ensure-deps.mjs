// Installs the npm packages (npm ci) when a fresh clone has none, so each README command works on its own.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

export function ensureDeps() {
  if (existsSync(path.join(root, 'node_modules/.package-lock.json'))) return;
  console.log('installing npm packages (npm ci)...');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { stdio: 'inherit', cwd: root });
}
