/**
 * `chancery render --config DIR --proxy NS/NAME`: the Envoy resources that proxy would receive, offline.
 */
import { existsSync } from 'node:fs';
import { stringify } from 'yaml';
import { validateWithEnvoy } from './envoy-validate.js';
import { compileSource } from '../compiler.js';
import { credentialNamesOf } from '../ir/credentials.js';
import { formatHuman } from '../diag/format.js';
import { readDirectory } from '../source/directory.js';
import { SHORT_NAME } from '../xds/type-urls.js';
import { command, DEFAULT_CONFIG_DIR, parse, UsageError } from './args.js';
import { DEFAULT_STATE_DIR } from './admin-client.js';
import { registeredInstances } from './registered.js';

const HELP = `Usage: chancery render [--config DIR] --proxy NAMESPACE/NAME [--format yaml|json] [--envoy [--envoy-bin PATH]]
                      [--state-dir DIR]

Prints the Envoy resources (listeners, routes, clusters, endpoints) the proxy would receive from the policy in DIR.
--envoy also runs Envoy's own validation on them (envoy --mode validate; the binary from --envoy-bin, $ENVOY_BIN,
.envoy/ or PATH) and exits 1 if Envoy rejects them.
Workloads registered into WorkloadGroups, as the control plane keeps them in <state-dir>/registrations.json
(default .chancery), are included like committed ones.`;

export function runRender(argv: string[]): Promise<number> {
  return command(HELP, argv, async () => {
    const { values } = parse(argv, {
      config: { type: 'string', default: DEFAULT_CONFIG_DIR },
      'state-dir': { type: 'string', default: DEFAULT_STATE_DIR },
      proxy: { type: 'string' },
      format: { type: 'string', default: 'yaml' },
      envoy: { type: 'boolean', default: false },
      'envoy-bin': { type: 'string' },
    });
    if (!values.proxy) throw new UsageError('--proxy is required');
    const src = readDirectory(values.config!);
    // With the instances registered into WorkloadGroups that the control plane kept in its state directory.
    const result = compileSource(src.value, src.diagnostics, undefined, {
      registered: registeredInstances(values['state-dir']!),
    });
    if (!result.ok) {
      console.error(formatHuman(result.diagnostics, new Map(src.value.files.map((f) => [f.path, f.text]))));
      return 1;
    }
    const proxy = result.proxies.get(values.proxy);
    if (!proxy) {
      console.error(`chancery: no workload "${values.proxy}"; known: ${[...result.proxies.keys()].join(', ')}`);
      return 1;
    }
    const doc: Record<string, object[]> = {};
    for (const [typeUrl, list] of proxy.resources) doc[SHORT_NAME[typeUrl]] = list.map((r) => r.json);
    console.log(
      values.format === 'json' ? JSON.stringify(doc, null, 2) : stringify(doc, { aliasDuplicateObjects: false }),
    );
    if (values.envoy) {
      const bin =
        values['envoy-bin'] ??
        process.env.ENVOY_BIN ??
        (existsSync('.envoy/envoy/_bin/envoy') ? '.envoy/envoy/_bin/envoy' : 'envoy');
      const v = await validateWithEnvoy(bin, proxy.resources, proxy.ir.node.identity, credentialNamesOf(proxy.ir));
      console.error(
        v.ok ? `envoy --mode validate: ok (${bin})` : `envoy --mode validate rejected the configuration:\n${v.output}`,
      );
      return v.ok ? 0 : 1;
    }
    return 0;
  });
}
