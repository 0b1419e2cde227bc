/**
 * The fleet scenario: instances register themselves into the synthetic mesh's WorkloadGroup with one group token
 * (as Envoys started from `chancery bootstrap --group` do). Measures a burst of registrations (until every instance
 * holds its whole configuration and all are compiled in), then single registrations one after another: from the
 * stream opening to the instance and every caller of the group's service holding the change (the simulated
 * Envoys ACK at once), and how many proxies each compiled.
 */
import { SimulatedEnvoys } from './clients.js';
import { FLEET_CALLERS, fleetAddress } from './mesh.js';

interface Cp {
  ask<T>(cmd: string, extra?: object): Promise<T>;
}

export interface FleetFigures {
  burst: number;
  burstMs: number;
  perSecond: number;
  latencies: number[];
  compiled: number[];
  proxies: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean | Promise<boolean>, maxMs: number): Promise<boolean> {
  const end = performance.now() + maxMs;
  while (performance.now() < end) {
    if (await cond()) return true;
    await sleep(5);
  }
  return false;
}

/**
 * `on`: where the callers are connected (another replica than the one the instances register with, in
 * bench/replicas.ts); by default the same control plane.
 */
export async function measureFleet(
  cp: Cp,
  port: number,
  burst: number,
  singles: number,
  on: { cp: Cp; port: number } = { cp, port },
): Promise<FleetFigures> {
  const callerIds = Array.from({ length: FLEET_CALLERS }, (_, i) => `bench/fleet-caller-${i}`);
  const callers = new SimulatedEnvoys(on.port, 'delta');
  callers.connect(callerIds, (await cp.ask<{ tokens: string[] }>('tokens', { ids: callerIds })).tokens);
  await until(() => [...callers.stats.values()].every((s) => s.firstFullAt !== undefined), 60_000);
  await callers.settle(500);
  const { token } = await cp.ask<{ token: string }>('group-token', { group: 'bench/fleet' });
  const registered = async () => (await on.cp.ask<{ compiled?: number }>('registrations')).compiled ?? 0;

  // A burst: every instance connects at once.
  const instances = new SimulatedEnvoys(port, 'delta');
  const ids = Array.from({ length: burst }, (_, i) => `bench/fleet-b${i}`);
  const t0 = performance.now();
  instances.connect(ids, [token], fleetAddress);
  const full = () => [...instances.stats.values()].every((s) => s.firstFullAt !== undefined);
  await until(async () => full() && (await registered()) >= burst, 300_000);
  const burstMs = Math.max(...[...instances.stats.values()].map((s) => s.firstFullAt ?? Infinity)) - t0;
  await instances.settle(500);
  await callers.settle(500);

  // One at a time: registration -> the instance and every caller hold the change.
  const latencies: number[] = [];
  const compiled: number[] = [];
  for (let j = 0; j < singles; j++) {
    const id = `bench/fleet-s${j}`;
    const start = performance.now();
    instances.connect([id], [token], () => fleetAddress(burst + j));
    const done = () =>
      instances.stats.get(id)?.firstFullAt !== undefined && callers.since(start, callerIds).count === FLEET_CALLERS;
    await until(done, 30_000);
    const last = Math.max(instances.stats.get(id)?.firstFullAt ?? Infinity, callers.since(start, callerIds).last);
    latencies.push(last - start);
    compiled.push((await cp.ask<{ last?: { compiled: number } }>('registrations')).last?.compiled ?? NaN);
    await callers.settle(100);
  }
  instances.close();
  callers.close();
  const { proxies } = await cp.ask<{ proxies: number }>('proxies');
  return { burst, burstMs, perSecond: burst / (burstMs / 1000), latencies, compiled, proxies };
}
