/**
 * A real etcd for one test: Debian's etcd-server ($ETCD_BIN, else /usr/bin/etcd; scripts/ensure-etcd.mjs installs
 * it), on a loopback address the caller chooses, with its own temporary data directory. `stop` and `start` again
 * keep the data (an outage and its end); `close` stops it and removes the directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

export class EtcdProcess {
  private proc?: ChildProcess;
  private output = '';
  readonly dataDir = mkdtempSync(path.join(os.tmpdir(), 'chancery-etcd-'));

  private constructor(
    readonly host: string,
    readonly port: number,
    private readonly peerPort: number,
  ) {}

  /** The `--store` value replicas are given. */
  get url(): string {
    return `etcd://${this.host}:${this.port}`;
  }

  static async start(host: string): Promise<EtcdProcess> {
    const e = new EtcdProcess(host, await freePort(host), await freePort(host));
    await e.start();
    return e;
  }

  async start(): Promise<void> {
    const bin = process.env.ETCD_BIN ?? '/usr/bin/etcd';
    const client = `http://${this.host}:${this.port}`;
    const peer = `http://${this.host}:${this.peerPort}`;
    const args = [
      '--name',
      'test',
      '--data-dir',
      this.dataDir,
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `test=${peer}`,
      '--log-level',
      'warn',
    ];
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const keep = (b: Buffer) => void (this.output = (this.output + b.toString()).slice(-4000));
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    const deadline = Date.now() + 20_000;
    while (!(await this.healthy())) {
      if (proc.exitCode !== null) throw new Error(`etcd exited (${proc.exitCode}): ${this.output}`);
      if (Date.now() > deadline) throw new Error(`etcd did not become healthy: ${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Whether etcd answers /health with true. */
  private async healthy(): Promise<boolean> {
    try {
      const r = await fetch(`http://${this.host}:${this.port}/health`, { signal: AbortSignal.timeout(1000) });
      return r.ok && ((await r.json()) as { health?: string }).health === 'true';
    } catch {
      return false;
    }
  }

  /** Stops etcd (SIGTERM, then SIGKILL) and waits until its port is closed; the data directory stays. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
    while (await portOpen(this.host, this.port)) await new Promise((r) => setTimeout(r, 50));
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}
