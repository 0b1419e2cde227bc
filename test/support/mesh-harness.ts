/**
 * The moving parts of an end-to-end test: a control plane on a policy directory (or Git repository) and real Envoy
 * sidecars bootstrapped exactly as a user would (`chancery bootstrap` with the control plane's state directory).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ControlPlane, type ControlPlaneSettings } from '../../src/app/control-plane.js';
import { silentLogger, type Logger } from '../../src/app/logger.js';
import { runBootstrap } from '../../src/cli/bootstrap.js';
import { startEnvoy, type EnvoyProcess } from './envoy.js';
import { freePort } from './ports.js';

export interface PlaneOptions extends Partial<ControlPlaneSettings> {
  configDir: string;
  stateDir: string;
  logger?: Logger;
}

/** Starts a control plane with test-friendly defaults (short debounce, TLS xDS on a free port). */
export async function startPlane(o: PlaneOptions): Promise<ControlPlane> {
  const xdsAddress = o.xdsAddress ?? `127.0.0.1:${await freePort()}`;
  const cp = new ControlPlane(
    { debounceQuietMs: 50, debounceMaxMs: 300, maxNewStreamsPerSecond: 100, watch: true, ...o, xdsAddress },
    o.logger ?? silentLogger,
  );
  await cp.start();
  return cp;
}

/** Writes a workload's bootstrap with `chancery bootstrap` and runs Envoy on it until it is ready. */
export async function startSidecar(
  cp: ControlPlane,
  id: string,
  o: { sotw?: boolean; extraArgs?: string[]; configDir?: string; waitReady?: boolean } = {},
): Promise<EnvoyProcess> {
  const out = `${cp.settings.stateDir}/bootstrap-${id.replace('/', '.')}.json`;
  const args = ['--config', o.configDir ?? cp.settings.configDir, '--workload', id, '--out', out, '--xds-address', cp.settings.xdsAddress, '--state-dir', cp.settings.stateDir];
  assert.equal(await runBootstrap([...args, ...(o.sotw ? ['--sotw'] : []), ...(o.extraArgs ?? [])]), 0, `bootstrap for ${id}`);
  const e = startEnvoy(id, JSON.parse(readFileSync(out, 'utf8')));
  if (o.waitReady !== false) await e.waitReady();
  return e;
}
