/**
 * The fleet scenario across three replicas sharing a real etcd (Debian's etcd-server, started here on 127.0.50.200
 * with its own data directory): instances register on replica r1 while the callers of their service are connected
 * to r2, so each figure includes the trip through etcd (r1 puts the registration, r2 follows it and compiles).
 * Skipped when no etcd binary is found.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EtcdProcess } from '../test/support/etcd.js';
import { measureFleet, type FleetFigures } from './fleet.js';

interface Child {
  ask<T>(cmd: string, extra?: object): Promise<T>;
  ready: { port: number };
}

export async function measureReplicas(
  start: (dir: string, state: string, store: string[]) => Promise<Child>,
  configDir: string,
  burst: number,
  singles: number,
): Promise<FleetFigures | undefined> {
  if (!existsSync(process.env.ETCD_BIN ?? '/usr/bin/etcd')) {
    console.log('  (replicas: no etcd found; install etcd-server or set ETCD_BIN)');
    return undefined;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chancery-bench-replicas-'));
  const keyFile = path.join(dir, 'store.key');
  writeFileSync(keyFile, randomBytes(32));
  const etcd = await EtcdProcess.start('127.0.50.200');
  const cps: Child[] = [];
  try {
    for (const name of ['r1', 'r2', 'r3']) {
      cps.push(await start(configDir, path.join(dir, name), [etcd.url, keyFile, name]));
    }
    const [r1, r2] = cps;
    return await measureFleet(r1, r1.ready.port, burst, singles, { cp: r2, port: r2.ready.port });
  } finally {
    await Promise.all(cps.map((c) => c.ask('stop').catch(() => undefined)));
    await etcd.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
