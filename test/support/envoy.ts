/**
 * Real Envoy processes for tests: validate a config with `envoy --mode validate`, or run one and talk to its admin
 * API. Every started Envoy is killed when the test process exits, even after a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request, waitFor } from './http.js';

export function envoyBinary(): string {
  const bin = process.env.ENVOY_BIN;
  if (!bin) throw new Error('ENVOY_BIN is not set: run the tests with `npm test`, which installs Envoy');
  return bin;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/** Runs `envoy --mode validate` on a config object. */
export function validateEnvoyConfig(config: object): { ok: boolean; output: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chancery-validate-'));
  const file = path.join(dir, 'envoy.json');
  writeFileSync(file, JSON.stringify(config));
  const r = spawnSync(envoyBinary(), ['--mode', 'validate', '-c', file, '--disable-hot-restart', '--log-level', 'error'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { ok: r.status === 0, output: `${r.stdout}\n${r.stderr}` };
}

export class EnvoyProcess {
  private out = '';
  exited = false;
  private readonly proc: ChildProcess;

  constructor(
    readonly name: string,
    configFile: string,
    readonly admin: { host: string; port: number },
  ) {
    this.proc = spawn(envoyBinary(), ['-c', configFile, '--disable-hot-restart', '--concurrency', '1', '--log-level', 'warn', '--drain-time-s', '1', '--file-flush-interval-msec', '100'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(this.proc);
    const keep = (b: Buffer): void => {
      this.out = (this.out + b.toString()).slice(-1_000_000);
    };
    this.proc.stdout!.on('data', keep);
    this.proc.stderr!.on('data', keep);
    this.proc.on('exit', () => {
      this.exited = true;
      running.delete(this.proc);
    });
  }

  logs(): string {
    return this.out;
  }

  async adminGet(p: string): Promise<string> {
    const r = await request({ host: this.admin.host, port: this.admin.port, path: p, timeoutMs: 5000 });
    return r.body;
  }

  /** Waits until Envoy reports LIVE (initial config received). */
  async waitReady(timeoutMs = 20_000): Promise<void> {
    await waitFor(
      async () => {
        if (this.exited) throw new Error(`envoy ${this.name} exited:\n${this.logs()}`);
        const r = await request({ host: this.admin.host, port: this.admin.port, path: '/ready', timeoutMs: 1000 }).catch(() => undefined);
        return r?.status === 200;
      },
      { timeoutMs, what: `envoy ${this.name} to be ready` },
    );
  }

  async configDump(): Promise<any> {
    return JSON.parse(await this.adminGet('/config_dump?include_eds'));
  }

  /** Counter and gauge values by name. */
  async stats(): Promise<Record<string, number>> {
    const text = await this.adminGet('/stats');
    const out: Record<string, number> = {};
    for (const line of text.split('\n')) {
      const m = /^([^:]+): (\d+)$/.exec(line);
      if (m) out[m[1]] = Number(m[2]);
    }
    return out;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(t);
  }
}

/** Starts Envoy with a bootstrap object; the admin address is read from it. */
export function startEnvoy(name: string, bootstrap: any): EnvoyProcess {
  const dir = mkdtempSync(path.join(os.tmpdir(), `chancery-envoy-${name.replace(/\W/g, '_')}-`));
  const file = path.join(dir, 'bootstrap.json');
  writeFileSync(file, JSON.stringify(bootstrap));
  const sa = bootstrap.admin.address.socket_address;
  return new EnvoyProcess(name, file, { host: sa.address, port: sa.port_value });
}
