// Finds or installs the headless browser the dashboard test drives: $CHROMIUM_BIN if set, else Debian's chromium
// (/usr/bin/chromium), installed with apt-get when missing (CI machines run as root).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export function ensureChromium() {
  if (process.env.CHROMIUM_BIN) return process.env.CHROMIUM_BIN;
  const bin = '/usr/bin/chromium';
  if (existsSync(bin)) return bin;
  console.error('installing chromium from Debian packages (apt-get) for the dashboard test ...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const sudo = process.getuid && process.getuid() !== 0 ? ['sudo'] : [];
  const run = (args) => execFileSync(sudo[0] ?? args[0], sudo.length ? args : args.slice(1), { stdio: ['ignore', 'ignore', 'inherit'], env, timeout: 600_000 });
  run(['apt-get', 'update', '-q']);
  run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', 'chromium']);
  if (!existsSync(bin)) throw new Error('chromium install failed: /usr/bin/chromium is missing');
  return bin;
}
