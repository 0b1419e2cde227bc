// Finds or installs the real etcd the replica tests start: $ETCD_BIN if set, else Debian's etcd-server
// (/usr/bin/etcd), installed with apt-get when missing (CI machines run as root). Each test starts its own etcd
// on loopback with its own data directory (test/support/etcd.ts).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export function ensureEtcd() {
  if (process.env.ETCD_BIN) return process.env.ETCD_BIN;
  const bin = '/usr/bin/etcd';
  if (existsSync(bin)) return bin;
  console.error('installing etcd-server from Debian packages (apt-get) for the replica tests ...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const sudo = process.getuid && process.getuid() !== 0 ? ['sudo'] : [];
  const run = (args) =>
    execFileSync(sudo[0] ?? args[0], sudo.length ? args : args.slice(1), {
      stdio: ['ignore', 'ignore', 'inherit'],
      env,
      timeout: 600_000,
    });
  run(['apt-get', 'update', '-q']);
  run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', 'etcd-server']);
  if (!existsSync(bin)) throw new Error('etcd-server install failed: /usr/bin/etcd is missing');
  return bin;
}
