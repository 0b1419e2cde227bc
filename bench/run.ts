/**
 * `npm run bench [-- --quick] [-- --sizes M,L]`: how fast and how big Chancery is on this machine, against the
 * physical limit of a bare grpc-js server. Prints a summary table and writes .bench/report.{md,json}.
 * Not part of the test suite; nothing here asserts timings.
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Authority } from '../src/ca/authority.js';
import { systemClock } from '../src/ca/clock.js';
import { compileSource } from '../src/compiler.js';
import { readDirectory } from '../src/source/directory.js';
import { SimulatedEnvoys } from './clients.js';
import { measureFleet } from './fleet.js';
import { measureReplicas } from './replicas.js';
import { physicalLimit } from './limit.js';
import { proxyFile, serviceFile, SIZES, writeMesh, type MeshSize } from './mesh.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const sizes = (args.find((a) => a.startsWith('--sizes='))?.slice(8) ?? (quick ? 'S' : 'M,L'))
  .split(',')
  .map((s) => SIZES[s]);

interface Figure {
  size: string;
  name: string;
  value: number;
  unit: string;
  target?: string;
  ok?: boolean;
  note?: string;
}
const figures: Figure[] = [];
const record = (f: Figure) => {
  figures.push(f);
  console.log(
    `  ${f.size.padEnd(2)} ${f.name.padEnd(48)} ${fmt(f.value).padStart(10)} ${f.unit.padEnd(10)} ${f.target ? `target ${f.target}` : ''}${f.ok === undefined ? '' : f.ok ? '  ok' : '  MISSED'}${f.note ? `  (${f.note})` : ''}`,
  );
};
const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Child {
  ask<T>(cmd: string, extra?: object): Promise<T>;
  kill(): void;
  ready: { port: number; startMs: number; compileMs: number };
}

async function startControlPlane(dir: string, state: string, store: string[] = []): Promise<Child> {
  const child = fork(path.join(import.meta.dirname, 'cp-child.ts'), [dir, state, ...store], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiters = new Map<string, (m: unknown) => void>();
  let ready: Child['ready'] | undefined;
  const readyP = new Promise<void>((resolve, reject) => {
    child.on('message', (m: { cmd: string } & Record<string, unknown>) => {
      if (m.cmd === 'ready') {
        ready = m as unknown as Child['ready'];
        resolve();
      } else waiters.get(m.cmd)?.(m);
    });
    child.on('exit', (code) => reject(new Error(`control plane exited (${code})`)));
  });
  await readyP;
  return {
    ready: ready!,
    ask: <T>(cmd: string, extra = {}) =>
      new Promise<T>((resolve) => {
        waiters.set(cmd, (m) => resolve(m as T));
        child.send({ cmd, ...extra });
      }),
    kill: () => child.kill('SIGKILL'),
  };
}

/** Applies a change to the policy files and measures what the clients receive until things settle. */
async function measureChange(
  cp: Child,
  envoys: SimulatedEnvoys,
  apply: () => void,
): Promise<{ ms: number; fanOutMs: number; affected: number; bytes: number; bytesPerAffected: number }> {
  const before = envoys.snapshot();
  const lastRevision = async () =>
    JSON.stringify((await cp.ask<{ revisions: unknown[] }>('revisions')).revisions.at(-1));
  const revision = await lastRevision();
  const t0 = performance.now();
  apply();
  // Wait until the control plane compiled the change (debounce + compile), then until the pushes settle.
  while ((await lastRevision()) === revision && performance.now() - t0 < 60_000)
    await new Promise((r) => setTimeout(r, 20));
  await envoys.settle(1000);
  let affected = 0;
  let bytes = 0;
  let last = t0;
  for (const [id, s] of envoys.stats) {
    const b = before.get(id)!;
    if (s.responses > b.responses) {
      affected++;
      bytes += s.bytes - b.bytes;
      last = Math.max(last, s.lastResponseAt);
    }
  }
  // Fan-out: from the first response of this change to the last one, i.e. serving alone, without debounce and compile.
  const fanOutMs = affected > 0 && envoys.firstResponseAt !== undefined ? last - envoys.firstResponseAt : 0;
  return {
    ms: affected > 0 ? last - t0 : 0,
    fanOutMs,
    affected,
    bytes,
    bytesPerAffected: affected ? bytes / affected : 0,
  };
}

async function benchSize(size: MeshSize): Promise<void> {
  console.log(
    `\n== mesh ${size.name}: ${size.services} services, ${size.services * size.endpointsPerService} endpoints, ${size.proxies} proxies (scope ${size.scope}), ${size.proxies} authorization policies`,
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), `chancery-bench-${size.name}-`));
  writeMesh(dir, size);

  // 1. Compile, in process.
  const times: number[] = [];
  const snapTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const src = readDirectory(dir);
    const r = compileSource(src.value, src.diagnostics); // encodes the snapshots too (one compiler)
    times.push(performance.now() - t0 - r.encodeMs);
    snapTimes.push(r.encodeMs);
    if (!r.ok) throw new Error(`synthetic mesh rejected: ${r.diagnostics[0]?.message}`);
  }
  const full = median(times) + median(snapTimes);
  record({
    size: size.name,
    name: 'full compile (read+compile+snapshots), median',
    value: full,
    unit: 'ms',
    target: size.name === 'M' ? '<= 300 ms' : size.name === 'L' ? '<= 2 s' : undefined,
    ok: size.name === 'M' ? full <= 300 : size.name === 'L' ? full <= 2000 : undefined,
    note: `compile ${fmt(median(times))} + snapshots ${fmt(median(snapTimes))}`,
  });

  // 1b. Incremental compile after one change (the previous result reused), in process: what a revision costs.
  const incremental = (edit: (i: number) => void): number[] => {
    let prev = compileSource(readDirectory(dir).value);
    const out: number[] = [];
    for (let i = 0; i < 7; i++) {
      edit(i);
      const t0 = performance.now();
      const src = readDirectory(dir);
      const r = compileSource(src.value, src.diagnostics, prev); // changed snapshots included
      out.push(performance.now() - t0);
      prev = r;
    }
    return out.slice(2); // the first two warm the caches of the new texts
  };
  const incPolicy = incremental((i) =>
    writeFileSync(path.join(dir, 'proxies', 'client-3.yaml'), proxyFile(3, size, 100 + i)),
  );
  const incFlap = incremental((i) =>
    writeFileSync(path.join(dir, 'services', 'svc-5.yaml'), serviceFile(5, size.endpointsPerService, i % 2 === 0)),
  );
  writeFileSync(path.join(dir, 'proxies', 'client-3.yaml'), proxyFile(3, size));
  writeFileSync(path.join(dir, 'services', 'svc-5.yaml'), serviceFile(5, size.endpointsPerService));
  for (const [what, xs] of [
    ['one policy edit', incPolicy],
    ['one endpoint flap', incFlap],
  ] as const) {
    record({
      size: size.name,
      name: `incremental compile after ${what}, median`,
      value: median(xs),
      unit: 'ms',
      target: size.name === 'M' ? '<= 10 ms' : undefined,
      ok: size.name === 'M' ? median(xs) <= 10 : undefined,
      note: `max ${fmt(Math.max(...xs))} ms of ${xs.length}; read + compile + changed snapshots`,
    });
  }

  // The control plane in its own process, with simulated Envoys.
  const state = mkdtempSync(path.join(os.tmpdir(), 'chancery-bench-state-'));
  const cp = await startControlPlane(dir, state);
  const rss0 = (await cp.ask<{ rss: number }>('rss')).rss;
  const ids = Array.from({ length: size.proxies }, (_, p) => `bench/client-${p}`);
  const { tokens } = await cp.ask<{ tokens: string[] }>('tokens', { ids });
  const envoys = new SimulatedEnvoys(cp.ready.port, 'delta');
  const t0 = performance.now();
  envoys.connect(ids, tokens);
  // Cold start ends when every proxy holds all five types (or after five minutes), then pushes settle.
  while ([...envoys.stats.values()].some((s) => s.firstFullAt === undefined) && performance.now() - t0 < 300_000)
    await new Promise((r) => setTimeout(r, 50));
  await envoys.settle(1500, 60_000);
  const waits = [...envoys.stats.values()].map((s) => (s.firstFullAt ?? Infinity) - t0);
  const all = Math.max(...waits);
  record({
    size: size.name,
    name: 'cold start: all proxies hold full config',
    value: all / 1000,
    unit: 's',
    target: size.name === 'L' ? '<= 15 s' : undefined,
    ok: size.name === 'L' ? all <= 15_000 : undefined,
    note: `median proxy ${fmt(median(waits))} ms, ${waits.filter((w) => !Number.isFinite(w)).length} incomplete`,
  });
  const rss1 = (await cp.ask<{ rss: number }>('rss')).rss;
  const perProxy = (rss1 - rss0) / size.proxies / 1024;
  record({
    size: size.name,
    name: 'memory per connected proxy',
    value: perProxy,
    unit: 'KB',
    target: '<= 100 KB',
    ok: perProxy <= 100,
    note: `base RSS ${fmt(rss0 / 1048576)} MB, with proxies ${fmt(rss1 / 1048576)} MB`,
  });

  // 2 and 4. Changes: one policy edit, one endpoint flap, one new service nobody routes to, a no-op.
  // Each change five times: median and the worst (of five, the nearest to a p99 a short run can give).
  const repeat = async (edit: (i: number) => void) => {
    const runs = [];
    for (let i = 0; i < (quick ? 3 : 5); i++) runs.push(await measureChange(cp, envoys, () => edit(i)));
    const ms = runs.map((r) => r.ms);
    return { first: runs[0], median: median(ms), max: Math.max(...ms) };
  };
  const policyEdit = await repeat((i) =>
    writeFileSync(path.join(dir, 'proxies', 'client-3.yaml'), proxyFile(3, size, 1 + i)),
  );
  record({
    size: size.name,
    name: 'policy edit -> affected proxies ACKed, median',
    value: policyEdit.median,
    unit: 'ms',
    target: 'p50 <= 250 ms, p99 <= 1 s',
    ok: policyEdit.median <= 250 && policyEdit.max <= 1000,
    note: `max ${fmt(policyEdit.max)} ms; ${policyEdit.first.affected} proxies affected, ${fmt(policyEdit.first.bytesPerAffected)} bytes each (debounce 100 ms included)`,
  });
  const flaps = await repeat((i) =>
    writeFileSync(path.join(dir, 'services', 'svc-5.yaml'), serviceFile(5, size.endpointsPerService, i % 2 === 0)),
  );
  const flap = flaps.first;
  record({
    size: size.name,
    name: 'endpoint flap -> affected proxies ACKed, median',
    value: flaps.median,
    unit: 'ms',
    target: 'p50 <= 250 ms, p99 <= 1 s',
    ok: flaps.median <= 250 && flaps.max <= 1000,
    note: `max ${fmt(flaps.max)} ms; ${flap.affected} proxies affected`,
  });
  record({
    size: size.name,
    name: 'Delta bytes per affected proxy (endpoint flap)',
    value: flap.bytesPerAffected,
    unit: 'bytes',
    target: '<= 2 KB',
    ok: flap.bytesPerAffected <= 2048,
  });
  const added = await measureChange(cp, envoys, () =>
    writeFileSync(
      path.join(dir, 'services', 'svc-new.yaml'),
      serviceFile(size.services + 1, size.endpointsPerService).replace(/svc-\d+/g, 'svc-new'),
    ),
  );
  record({
    size: size.name,
    name: "new service in nobody's scope: proxies that received anything",
    value: added.affected,
    unit: 'proxies',
    target: '0',
    ok: added.affected === 0,
  });
  const noop = await measureChange(cp, envoys, () =>
    writeFileSync(path.join(dir, 'services', 'svc-1.yaml'), serviceFile(1, size.endpointsPerService) + '# a comment\n'),
  );
  record({
    size: size.name,
    name: 'no-op revision: bytes sent',
    value: noop.bytes,
    unit: 'bytes',
    target: '0',
    ok: noop.bytes === 0,
  });

  // 5. Push throughput: a change that reaches every proxy (a mesh-wide authorization policy).
  // Three times (the machine is shared and noisy); the figures are the medians.
  const broads = [];
  for (let i = 0; i < 3; i++) {
    broads.push(
      await measureChange(cp, envoys, () =>
        writeFileSync(
          path.join(dir, 'mesh-wide.yaml'),
          `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: deny-debug, namespace: istio-system }\nspec:\n  action: DENY\n  rules: [{ to: [{ operation: { paths: ["/debug${i}/*"] } }] }]\n`,
        ),
      ),
    );
  }
  const broad = broads[0];
  record({
    size: size.name,
    name: 'mesh-wide policy -> every proxy ACKed, median of 3',
    value: median(broads.map((b) => b.ms)),
    unit: 'ms',
    note: `${broad.affected} proxies, ${fmt(broad.bytesPerAffected)} bytes each (debounce and compile included)`,
  });
  const fanOutMs = median(broads.map((b) => b.fanOutMs));
  const throughput = broad.affected / (Math.max(1, fanOutMs) / 1000);
  record({
    size: size.name,
    name: 'push to every proxy: responses ACKed per second',
    value: throughput,
    unit: '/s',
    note: `fan-out of ${broad.affected} responses in ${fmt(fanOutMs)} ms (median of 3), first response to last`,
  });

  // 7. Steady churn: 10 endpoint changes per second for 10 s.
  await cp.ask('cpu-start');
  const churnEnd = performance.now() + (quick ? 3000 : 10_000);
  let k = 0;
  while (performance.now() < churnEnd) {
    writeFileSync(
      path.join(dir, 'services', `svc-${k % size.services}.yaml`),
      serviceFile(k % size.services, size.endpointsPerService, k % 2 === 0),
    );
    k++;
    await new Promise((r) => setTimeout(r, 100));
  }
  await envoys.settle(1000);
  const churn = await cp.ask<{ cores: number; loopP99Ms: number }>('cpu-stop');
  record({
    size: size.name,
    name: 'steady churn (10 endpoint changes/s): CPU',
    value: churn.cores,
    unit: 'cores',
    target: '<= 0.3',
    ok: churn.cores <= 0.3,
  });
  record({
    size: size.name,
    name: 'steady churn: event-loop delay p99',
    value: churn.loopP99Ms,
    unit: 'ms',
    target: '<= 50 ms',
    ok: churn.loopP99Ms <= 50,
  });

  envoys.close();

  // SotW for the same endpoint flap: full state of the changed types.
  const sotw = new SimulatedEnvoys(cp.ready.port, 'sotw');
  const sotwIds = ids.slice(0, Math.min(200, ids.length));
  sotw.connect(
    sotwIds.map((x) => x),
    (await cp.ask<{ tokens: string[] }>('tokens', { ids: sotwIds })).tokens,
  );
  await sotw.settle(1500);
  // After the Delta clients are gone: the server keeps one stream per node id, so they cannot run side by side.
  // svc-0 is in client-0's scope, so some of these SotW proxies are affected; flipped from what churn left.
  const svc0 = path.join(dir, 'services', 'svc-0.yaml');
  const unflapped = readFileSync(svc0, 'utf8') === serviceFile(0, size.endpointsPerService, false);
  const flipped = serviceFile(0, size.endpointsPerService, unflapped);
  const sotwFlap = await measureChange(cp, sotw, () => writeFileSync(svc0, flipped));
  record({
    size: size.name,
    name: 'SotW bytes per affected proxy (endpoint flap)',
    value: sotwFlap.bytesPerAffected,
    unit: 'bytes',
    note: `${sotwFlap.affected} of ${sotwIds.length} SotW proxies affected; Delta/SotW ratio ${fmt(sotwFlap.bytesPerAffected / Math.max(1, flap.bytesPerAffected))}x`,
  });
  sotw.close();

  // 8. Fleet: instances registering into a WorkloadGroup with one group token (after the rest: they join the mesh).
  const burst = quick ? 200 : size.name === 'M' ? 1000 : 2000;
  const fleet = await measureFleet(cp, cp.ready.port, burst, quick ? 10 : 20);
  const burstNote = `${burst} instances at once, each holding its whole config, in ${fmt(fleet.burstMs)} ms`;
  const value = fleet.perSecond;
  record({ size: size.name, name: 'fleet: registrations per second (burst)', value, unit: '/s', note: burstNote });
  const lat = [...fleet.latencies].sort((a, b) => a - b);
  const p99 = lat[Math.min(lat.length - 1, Math.ceil(lat.length * 0.99) - 1)];
  const compiledEach = [...new Set(fleet.compiled)].join('/');
  record({
    size: size.name,
    name: 'fleet: registration -> affected proxies ACKed, p50',
    value: median(lat),
    unit: 'ms',
    target: 'p50 <= 250 ms, p99 <= 1 s',
    ok: median(lat) <= 250 && p99 <= 1000,
    note: `p99 ${fmt(p99)} ms (max of ${lat.length}); the instance and its service's 20 callers`,
  });
  record({
    size: size.name,
    name: 'fleet: proxies compiled per registration',
    value: median(fleet.compiled),
    unit: 'proxies',
    target: '21 (0 unrelated)',
    ok: fleet.compiled.every((c) => c === 21),
    note: `${compiledEach} each, of ${fleet.proxies}`,
  });

  // 9. The same across three replicas sharing a real etcd: instances register on one, the callers are on another.
  const rep = await measureReplicas((d, s, st) => startControlPlane(d, s, st), dir, quick ? 50 : 200, quick ? 10 : 20);
  if (rep) {
    const rl = [...rep.latencies].sort((a, b) => a - b);
    const rp99 = rl[Math.min(rl.length - 1, Math.ceil(rl.length * 0.99) - 1)];
    record({
      size: size.name,
      name: 'replicas x3 (etcd): registration -> callers on another ACKed, p50',
      value: median(rl),
      unit: 'ms',
      target: 'p99 <= 1 s',
      ok: rp99 <= 1000,
      note: `p99 ${fmt(rp99)} ms (max of ${rl.length}); registered on r1, the 20 callers on r2`,
    });
    const burstNote = `${rep.burst} instances on r1, compiled in on r2, in ${fmt(rep.burstMs)} ms`;
    record({
      size: size.name,
      name: 'replicas x3 (etcd): registrations per second',
      value: rep.perSecond,
      unit: '/s',
      note: burstNote,
    });
  }

  // Physical limit: the same fan-out by a bare grpc-js server writing one pre-encoded response.
  const limits = [];
  for (let i = 0; i < 3; i++) limits.push(await physicalLimit(size.proxies, broad.bytesPerAffected || 2000));
  const limit = { ms: median(limits.map((l) => l.ms)), perSecond: median(limits.map((l) => l.perSecond)) };
  record({
    size: size.name,
    name: 'physical limit: bare grpc-js fan-out, same clients',
    value: limit.perSecond,
    unit: '/s',
    note: `${size.proxies} responses in ${fmt(limit.ms)} ms (median of 3)`,
  });
  record({
    size: size.name,
    name: 'push throughput / physical limit',
    value: throughput / limit.perSecond,
    unit: 'ratio',
    target: '>= 0.8',
    ok: throughput / limit.perSecond >= 0.8,
  });

  await cp.ask('stop').catch(() => undefined);
  cp.kill();
  rmSync(dir, { recursive: true, force: true });
  rmSync(state, { recursive: true, force: true });
}

async function certificates(): Promise<void> {
  const ca = await Authority.open({
    stateDir: mkdtempSync(path.join(os.tmpdir(), 'chancery-bench-ca-')),
    clock: systemClock,
  });
  for (let i = 0; i < 200; i++) await ca.issue(`spiffe://cluster.local/ns/b/sa/warm${i}`, 3_600_000);
  const n = quick ? 1000 : 5000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await ca.issue(`spiffe://cluster.local/ns/b/sa/s${i}`, 86_400_000);
  const perSecond = n / ((performance.now() - t0) / 1000);
  record({
    size: '-',
    name: 'certificates issued per second (key + sign)',
    value: perSecond,
    unit: '/s',
    target: '>= 2000',
    ok: perSecond >= 2000,
  });
}

const started = performance.now();
const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
console.log(`Chancery benchmarks (${quick ? 'quick' : 'full'}) on ${machine}`);
await certificates();
for (const s of sizes) await benchSize(s);
const out = path.join(process.cwd(), '.bench');
mkdirSync(out, { recursive: true });
const minutes = (performance.now() - started) / 60_000;
writeFileSync(
  path.join(out, 'report.json'),
  JSON.stringify({ machine, quick, at: new Date().toISOString(), minutes, figures }, null, 2),
);
const md = [
  `Benchmarks on ${machine} (${new Date().toISOString().slice(0, 10)}, ${quick ? 'quick' : 'full'} run, ${minutes.toFixed(1)} minutes)`,
  '',
  '| mesh | figure | value | target |',
  '| --- | --- | --- | --- |',
  ...figures.map(
    (f) =>
      `| ${f.size} | ${f.name} | ${fmt(f.value)} ${f.unit}${f.note ? ` (${f.note})` : ''} | ${f.target ?? ''}${f.ok === undefined ? '' : f.ok ? ' ✓' : ' ✗'} |`,
  ),
].join('\n');
writeFileSync(path.join(out, 'report.md'), md + '\n');
console.log(`\nreport: .bench/report.md, .bench/report.json (${minutes.toFixed(1)} minutes)`);
process.exit(0);
