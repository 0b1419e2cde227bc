/**
 * The physical limit: the same simulated Envoys (same decoding, same ACKs) connected to a bare server in its own
 * process (bench/limit-child.ts) that writes one pre-encoded response to every stream. Measured like Chancery's
 * fan-out, at the clients: from the first response received to the last. Chancery's push figures are reported as
 * a ratio to this, so results compare across noisy runs.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { SimulatedEnvoys } from './clients.js';

export async function physicalLimit(clients: number, bytes: number): Promise<{ ms: number; perSecond: number }> {
  const child = fork(path.join(import.meta.dirname, 'limit-child.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiters = new Map<string, (m: Record<string, unknown>) => void>();
  child.on('message', (m: { cmd: string } & Record<string, unknown>) => waiters.get(m.cmd)?.(m));
  const ask = (cmd: string, extra = {}) =>
    new Promise<Record<string, unknown>>((resolve) => {
      waiters.set(cmd, resolve);
      if (cmd !== 'ready') child.send({ cmd, ...extra });
    });
  const { port } = (await ask('ready')) as { port: number };
  const envoys = new SimulatedEnvoys(port, 'delta');
  envoys.connect(Array.from({ length: clients }, (_, i) => `limit/client-${i}`), Array.from({ length: clients }, () => 'none'));
  while (((await ask('streams')).count as number) < clients) await new Promise((r) => setTimeout(r, 20));
  const received = () => [...envoys.stats.values()].reduce((n, s) => n + s.responses, 0);
  const push = async (nonce: string): Promise<number> => {
    const before = received();
    envoys.snapshot();
    await ask('push', { bytes, nonce });
    const deadline = performance.now() + 60_000;
    while (received() < before + clients && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const last = Math.max(...[...envoys.stats.values()].map((s) => s.lastResponseAt));
    return last - (envoys.firstResponseAt ?? last);
  };
  await push('warm-up'); // the first listener response makes each client subscribe to more; measure the second
  await new Promise((r) => setTimeout(r, 500));
  const ms = await push('measured');
  envoys.close();
  child.kill();
  return { ms, perSecond: clients / (Math.max(1, ms) / 1000) };
}
