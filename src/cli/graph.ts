/**
 * `chancery graph`: who may talk to whom, from policy alone.
 */
import { compileSource } from '../compiler.js';
import { formatHuman } from '../diag/format.js';
import { buildGraph, formatGraph } from '../explain/graph.js';
import { readDirectory } from '../source/directory.js';
import { command, DEFAULT_CONFIG_DIR, parse, UsageError } from './args.js';
import { DEFAULT_STATE_DIR } from './admin-client.js';
import { registeredInstances } from './registered.js';

const HELP = `Usage: chancery graph [--config DIR] [--format table|json|dot|mermaid] [--state-dir DIR]

Lists every caller -> callee edge that some request could take under the policies: port, methods and paths
(summarised), mTLS mode, and flags for over-broad rules and plaintext-permitted edges. Gateways add edges from
"outside" (per server, or per SNI chain of a TLS PASSTHROUGH server), to what their HTTP routes and TCP chains
reach, and from the sidecars that can reach their ISTIO_MUTUAL servers; a route to a service outside the mesh
is an edge to its host.
Workloads registered into WorkloadGroups, as the control plane keeps them in <state-dir>/registrations.json
(default .chancery), are included like committed ones.`;

export function runGraph(argv: string[]): Promise<number> {
  return command(HELP, argv, () => {
    const { values } = parse(argv, {
      config: { type: 'string', default: DEFAULT_CONFIG_DIR },
      'state-dir': { type: 'string', default: DEFAULT_STATE_DIR },
      format: { type: 'string', default: 'table' },
    });
    const format = values.format as 'table' | 'json' | 'dot' | 'mermaid';
    if (!['table', 'json', 'dot', 'mermaid'].includes(format))
      throw new UsageError(`--format: "${format}" is not table, json, dot or mermaid`);
    const src = readDirectory(values.config!);
    // With the instances registered into WorkloadGroups that the control plane kept in its state directory.
    const result = compileSource(src.value, src.diagnostics, undefined, {
      registered: registeredInstances(values['state-dir']!),
    });
    if (!result.ok || !result.model) {
      console.error(formatHuman(result.diagnostics, new Map(src.value.files.map((f) => [f.path, f.text]))));
      return 1;
    }
    console.log(formatGraph(buildGraph(result.model), format));
    return 0;
  });
}
