/**
 * Control-plane replicas as real processes (`node bin/chancery.mjs serve --store ...`), so a test can `kill -9`
 * one. Each gets its own state directory, a TLS and a plaintext xDS port and a status API on its own address.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/chancery.mjs');

export interface ReplicaOptions {
  name: string;
  host: string;
  configDir: string;
  store: string;
  keyFile: string;
  extraArgs?: string[];
}

export class ReplicaProcess {
  proc!: ChildProcess;
  output = '';
  xdsPort = 0;
  plaintextPort = 0;
  adminPort = 0;
  readonly stateDir = mkdtempSync(path.join(os.tmpdir(), 'chancery-replica-'));

  constructor(readonly o: ReplicaOptions) {}

  get xdsAddress(): string {
    return `${this.o.host}:${this.xdsPort}`;
  }

  get adminUrl(): string {
    return `http://${this.o.host}:${this.adminPort}`;
  }

  static async start(o: ReplicaOptions): Promise<ReplicaProcess> {
    const r = new ReplicaProcess(o);
    [r.xdsPort, r.plaintextPort, r.adminPort] = [
      await freePort(o.host),
      await freePort(o.host),
      await freePort(o.host),
    ];
    r.spawn();
    await r.ready();
    return r;
  }

  /** Starts the process (again, on the same ports and state directory). */
  spawn(): void {
    const o = this.o;
    const args = [
      BIN,
      'serve',
      '--config',
      o.configDir,
      '--state-dir',
      this.stateDir,
      '--replica',
      o.name,
      '--xds-host',
      o.host,
      '--xds-port',
      String(this.xdsPort),
      '--xds-plaintext-port',
      String(this.plaintextPort),
      '--admin-host',
      o.host,
      '--admin-port',
      String(this.adminPort),
      '--store',
      o.store,
      '--store-key',
      o.keyFile,
      '--log-level',
      'info',
      ...(o.extraArgs ?? []),
    ];
    this.output = '';
    this.proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer) => void (this.output = (this.output + b.toString()).slice(-20_000));
    this.proc.stdout!.on('data', keep);
    this.proc.stderr!.on('data', keep);
  }

  /** Starts the process again after it stopped (same ports, same state directory) and waits until it is ready. */
  async spawnAgain(): Promise<void> {
    this.spawn();
    await this.ready();
  }

  /** Resolves once the status API answers with an accepted revision; rejects if the process exits first. */
  async ready(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`replica ${this.o.name} exited: ${this.output}`);
      const s = await this.status().catch(() => undefined);
      if (s?.revision?.current) return;
      if (Date.now() > deadline) throw new Error(`replica ${this.o.name} not ready: ${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async status(): Promise<any> {
    const r = await fetch(`${this.adminUrl}/status`, { signal: AbortSignal.timeout(2000) });
    return r.json();
  }

  async get(pathname: string): Promise<{ code: number; body: any }> {
    const r = await fetch(`${this.adminUrl}${pathname}`, { signal: AbortSignal.timeout(2000) });
    return { code: r.status, body: await r.json() };
  }

  /** Resolves with the exit code once the process ended. */
  exited(): Promise<number | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return Promise.resolve(this.proc.exitCode);
    return new Promise((r) => this.proc.once('exit', (code) => r(code)));
  }

  async kill9(): Promise<void> {
    const done = this.exited();
    this.proc.kill('SIGKILL');
    await done;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const done = this.exited();
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await done;
    clearTimeout(t);
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/** Runs the chancery command to its end; resolves with its exit code and output. */
export function runChancery(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    p.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    p.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    p.on('exit', (code) => resolve({ code, output }));
  });
}
