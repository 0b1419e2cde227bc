/**
 * `chancery render --config DIR --proxy NS/NAME`: the Envoy resources that proxy would receive, offline.
 */
import { stringify } from 'yaml';
import { compileSource } from '../compiler.js';
import { formatHuman } from '../diag/format.js';
import { readDirectory } from '../source/directory.js';
import { SHORT_NAME } from '../xds/type-urls.js';
import { command, DEFAULT_CONFIG_DIR, parse, UsageError } from './args.js';

const HELP = `Usage: chancery render [--config DIR] --proxy NAMESPACE/NAME [--format yaml|json]

Prints the Envoy resources (listeners, routes, clusters, endpoints) the proxy would receive from the policy in DIR.`;

export function runRender(argv: string[]): Promise<number> {
  return command(HELP, argv, () => {
    const { values } = parse(argv, {
      config: { type: 'string', default: DEFAULT_CONFIG_DIR },
      proxy: { type: 'string' },
      format: { type: 'string', default: 'yaml' },
    });
    if (!values.proxy) throw new UsageError('--proxy is required');
    const src = readDirectory(values.config!);
    const result = compileSource(src.value, src.diagnostics);
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
    console.log(values.format === 'json' ? JSON.stringify(doc, null, 2) : stringify(doc, { aliasDuplicateObjects: false }));
    return 0;
  });
}
