/**
 * The control plane under test, in its own process so its memory and CPU are measured alone. Talks to the
 * benchmark over IPC: reports its xDS port, answers rss / tokens / cpu queries.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ControlPlane } from '../src/app/control-plane.js';
import { silentLogger } from '../src/app/logger.js';

// With a store: one replica of several sharing an etcd (bench/replicas.ts).
const [configDir, stateDir, storeUrl, keyFile, replica] = process.argv.slice(2);
const store = storeUrl ? { store: { url: storeUrl, keyFile: keyFile!, replica: replica! } } : {};
const cp = new ControlPlane(
  {
    configDir,
    stateDir,
    xdsAddress: '127.0.0.1:0',
    xdsPlaintextAddress: '127.0.0.1:0',
    maxNewStreamsPerSecond: 1_000_000,
    watch: true,
    registrationGraceMs: 1000,
    ...store,
  },
  silentLogger,
);
const t0 = performance.now();
await cp.start();
const startMs = performance.now() - t0;
const loop = monitorEventLoopDelay({ resolution: 10 });
let cpuMark = process.cpuUsage();
let wallMark = performance.now();

process.on('message', async (m: { cmd: string; ids?: string[]; group?: string }) => {
  const reply = (x: object) => process.send!({ cmd: m.cmd, ...x });
  if (m.cmd === 'rss') {
    global.gc?.();
    reply({ rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed });
  } else if (m.cmd === 'tokens') {
    reply({ tokens: await Promise.all((m.ids ?? []).map((id) => cp.issueToken(id))) });
  } else if (m.cmd === 'group-token') {
    reply({ token: await cp.issueGroupToken(m.group!) });
  } else if (m.cmd === 'registrations') {
    const compiled = cp.current?.registered.length;
    reply({ instances: cp.registrations.list().length, compiled, last: cp.lastRegistrationCompile });
  } else if (m.cmd === 'proxies') {
    reply({ proxies: cp.current?.result.proxies.size ?? 0 });
  } else if (m.cmd === 'cpu-start') {
    cpuMark = process.cpuUsage();
    wallMark = performance.now();
    loop.reset();
    loop.enable();
    reply({});
  } else if (m.cmd === 'cpu-stop') {
    const u = process.cpuUsage(cpuMark);
    loop.disable();
    reply({ cores: (u.user + u.system) / 1000 / (performance.now() - wallMark), loopP99Ms: loop.percentile(99) / 1e6 });
  } else if (m.cmd === 'revisions') {
    reply({
      revisions: cp.revisions.map((r) => ({
        revision: r.revision,
        status: r.status,
        compileMs: r.compileMs,
        at: r.at,
      })),
    });
  } else if (m.cmd === 'stop') {
    await cp.stop();
    reply({});
    process.exit(0);
  }
});
process.send!({ cmd: 'ready', port: cp.xdsPlaintextPort, startMs, compileMs: cp.revisions.at(-1)?.compileMs });
