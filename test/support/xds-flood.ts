/**
 * A flood of ADS streams from a process of its own (so its rate does not depend on the test's event loop, which
 * also runs the control plane): `startFlood(port, perSecond, token?)` forks this file, which opens about
 * `perSecond` Delta ADS streams per second on one plaintext channel, every other one with `token` (e.g. a forged
 * one) and the rest with none, and counts how each ended. Stopped by stop(), and killed with the test process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';

const ADS_DELTA = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

export interface FloodCounts {
  opened: number;
  /** gRPC status name -> streams that ended with it. */
  ended: Record<string, number>;
  elapsedMs: number;
}

export interface Flood {
  counts(): Promise<FloodCounts>;
  stop(): Promise<FloodCounts>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export function startFlood(port: number, perSecond: number, token?: string): Flood {
  const child = fork(fileURLToPath(import.meta.url), [String(port), String(perSecond), token ?? ''], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const ask = (cmd: string) =>
    new Promise<FloodCounts>((resolve, reject) => {
      const onExit = () => reject(new Error('the flood process exited'));
      child.once('exit', onExit);
      child.once('message', (m) => {
        child.off('exit', onExit);
        resolve(m as FloodCounts);
      });
      child.send(cmd);
    });
  return {
    counts: () => ask('counts'),
    async stop() {
      const c = await ask('stop');
      await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(undefined)));
      return c;
    },
  };
}

function run(port: number, perSecond: number, token: string): void {
  const id = (b: Buffer) => b;
  const def = { path: ADS_DELTA, requestStream: true, responseStream: true };
  const Client = grpc.makeGenericClientConstructor(
    { Delta: { ...def, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } },
    'flood',
  );
  const raw = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const client = raw as unknown as { Delta(md: grpc.Metadata): grpc.ClientDuplexStream<Buffer, Buffer> };
  const ended: Record<string, number> = {};
  const open = new Set<grpc.ClientDuplexStream<Buffer, Buffer>>();
  let opened = 0;
  const t0 = Date.now();
  // Paced by the clock, not by ticks: a late tick opens what is due.
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - t0) / 1000) * perSecond);
    for (; opened < due; opened++) {
      const md = new grpc.Metadata();
      if (token && opened % 2 === 1) md.set('authorization', `Bearer ${token}`);
      const call = client.Delta(md);
      open.add(call);
      call.on('error', () => {});
      call.on('status', (s: grpc.StatusObject) => {
        open.delete(call);
        const name = grpc.status[s.code];
        ended[name] = (ended[name] ?? 0) + 1;
      });
    }
  }, 5);
  const counts = (): FloodCounts => ({ opened, ended: { ...ended }, elapsedMs: Date.now() - t0 });
  process.on('message', (cmd) => {
    if (cmd === 'stop') {
      clearInterval(timer);
      for (const c of open) c.cancel();
      raw.close();
      process.send!(counts(), () => process.exit(0));
    } else process.send!(counts());
  });
  process.on('disconnect', () => process.exit(0));
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  const [port, perSecond, token] = process.argv.slice(2);
  run(Number(port), Number(perSecond), token);
}
