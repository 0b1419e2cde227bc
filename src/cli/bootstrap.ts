/**
 * `chancery bootstrap`: writes the Envoy bootstrap for one workload's sidecar, with its xDS token and the xDS CA
 * that the control plane's server certificate chains to (from the control plane's state directory, created there if
 * this runs first; refused, naming the file, if that state is damaged).
 */
import { stringify } from 'yaml';
import { defaultAdminAddress, workloadBootstrap } from '../app/bootstraps.js';
import { openState } from '../app/state-dir.js';
import { systemClock } from '../ca/clock.js';
import { compileSource } from '../compiler.js';
import { formatHuman } from '../diag/format.js';
import { parseDurationMs } from '../policy/reader.js';
import { MAX_TOKEN_TTL_SECONDS } from '../server/proxy-auth.js';
import { readDirectory } from '../source/directory.js';
import { writeFileAtomic } from '../util/files.js';
import { command, DEFAULT_CONFIG_DIR, parse, parseHostPort, parsePort, UsageError } from './args.js';

const HELP = `Usage: chancery bootstrap [--config DIR] --workload NAMESPACE/NAME [options]

  --out FILE              write to FILE (.json for JSON, otherwise YAML); default: stdout
  --sotw                  use State-of-the-World ADS instead of Delta
  --xds-address HOST:PORT control plane address (default 127.0.0.1:15010)
  --plaintext             connect to a plaintext xDS port (only for control planes started with one)
  --state-dir DIR         the control plane's state (CA and token key; default .chancery)
  --token-ttl DURATION    lifetime of the embedded xDS token (default 720h, at most 8760h)
  --admin-address H:P     Envoy admin listener (default: the workload's address if it is loopback, else 127.0.0.1; port 15000)
  --initial-fetch-timeout D  how long Envoy waits for its first config before starting anyway (default 10s)
  --prometheus-port PORT  serve Envoy's Prometheus stats on the workload's address at /stats/prometheus (default 15090; 0: off)`;

export { defaultAdminAddress };

export function runBootstrap(argv: string[]): Promise<number> {
  return command(HELP, argv, async () => {
    const { values } = parse(argv, {
      config: { type: 'string', default: DEFAULT_CONFIG_DIR },
      workload: { type: 'string' },
      out: { type: 'string' },
      sotw: { type: 'boolean', default: false },
      plaintext: { type: 'boolean', default: false },
      'xds-address': { type: 'string', default: '127.0.0.1:15010' },
      'state-dir': { type: 'string', default: '.chancery' },
      'token-ttl': { type: 'string', default: '720h' },
      'admin-address': { type: 'string' },
      'initial-fetch-timeout': { type: 'string', default: '10s' },
      'prometheus-port': { type: 'string', default: '15090' },
    });
    const promPort = parsePort(values['prometheus-port']!, '--prometheus-port');
    if (!values.workload) throw new UsageError('--workload NAMESPACE/NAME is required');
    if (!/^\d+(\.\d+)?s$/.test(values['initial-fetch-timeout']!)) throw new UsageError('--initial-fetch-timeout must be seconds, e.g. 10s');
    const ttlMs = parseDurationMs(values['token-ttl']!);
    if (ttlMs === undefined || ttlMs < 1000) throw new UsageError('--token-ttl must be a duration such as 720h');
    if (ttlMs > MAX_TOKEN_TTL_SECONDS * 1000) {
      throw new UsageError(`--token-ttl may be at most ${MAX_TOKEN_TTL_SECONDS / 3600}h (the server refuses longer)`);
    }
    const src = readDirectory(values.config!);
    const result = compileSource(src.value, src.diagnostics);
    if (!result.ok || !result.model) {
      console.error(formatHuman(result.diagnostics, new Map(src.value.files.map((f) => [f.path, f.text]))));
      return 1;
    }
    const w = result.model.workloads.find((x) => x.id === values.workload);
    if (!w) {
      console.error(`chancery: no WorkloadEntry "${values.workload}"; known: ${result.model.workloads.map((x) => x.id).join(', ') || 'none'}`);
      return 1;
    }
    const stateDir = values['state-dir']!;
    const xds = parseHostPort(values['xds-address']!, '--xds-address');
    const mesh = result.model.mesh;
    const state = await openState({ stateDir, clock: systemClock, workloadCa: false });
    const config = workloadBootstrap(w, mesh, {
      xds,
      ...(values['admin-address'] ? { admin: parseHostPort(values['admin-address'], '--admin-address') } : {}),
      variant: values.sotw ? 'sotw' : 'delta',
      initialFetchTimeout: values['initial-fetch-timeout']!,
      token: await state.tokens.issue(w.id, Math.round(ttlMs / 1000)),
      prometheusPort: promPort,
      ...(values.plaintext ? {} : { trustPem: state.xdsCa.bootstrapTrustPem() }),
    });
    const text = values.out?.endsWith('.json') ? JSON.stringify(config, null, 2) + '\n' : stringify(config, { aliasDuplicateObjects: false });
    if (values.out) writeFileAtomic(values.out, text); // Envoy (or a watcher) never reads half a bootstrap
    else process.stdout.write(text);
    return 0;
  });
}
