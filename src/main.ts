/**
 * Entry point of the `chancery` command: dispatches to a subcommand in cli/.
 */
import { runBootstrap } from './cli/bootstrap.js';
import { runCheck } from './cli/check.js';
import { runCredential } from './cli/credential.js';
import { runDiff } from './cli/diff.js';
import { runExplain } from './cli/explain.js';
import { runGraph } from './cli/graph.js';
import { runHistory } from './cli/history.js';
import { runRender } from './cli/render.js';
import { runRevoke } from './cli/revoke.js';
import { runRotateRoot } from './cli/rotate-root.js';
import { runRotateXdsCa } from './cli/rotate-xds-ca.js';
import { runServe } from './cli/serve.js';
import { runStatus } from './cli/status.js';
import { runStoreKey } from './cli/store-key.js';

const USAGE = `chancery: a GitOps control plane for stock Envoy sidecars

Usage:
  chancery serve     [--config DIR] [--xds-port 15010] [--xds-host 0.0.0.0] [--admin-port 15014] [--state-dir DIR]
                     [--credentials-dir DIR] [--store etcd://H:P[,H:P...] --store-key FILE [--replica NAME]]
                     [--admin-host H --admin-tls-cert FILE --admin-tls-key FILE] [--admin-allowed-host NAME]
  chancery bootstrap --config DIR --workload NAMESPACE/NAME [--out FILE] [--sotw] [--xds-address HOST:PORT] [--admin-address HOST:PORT]
  chancery bootstrap --config DIR --group NAMESPACE/GROUP [--address IP] [--name NAME] [--out FILE] ...
  chancery check     DIR [--format human|json|github] [--credentials-dir DIR]
  chancery credential create NAME --host HOST [--credentials-dir DIR]
  chancery render    --config DIR --proxy NAMESPACE/NAME [--format yaml|json]
  chancery explain   --from NAMESPACE/WORKLOAD --to HOST[:PORT] [--method M] [--path P] [--header k=v] [--jwt-claims JSON]
                     [--source-ip IP] [--all]
  chancery graph     [--config DIR] [--format table|json|dot|mermaid]
  chancery diff      [--config DIR] REV_A REV_B [--format markdown|json]
  chancery status    [--admin URL] [--json] [--state-dir DIR]
  chancery history   --proxy NAMESPACE/NAME --at TIME [--state-dir DIR] [--git REPO]
  chancery rotate-root [--admin URL] [--state-dir DIR]
  chancery revoke    --group NAMESPACE/GROUP [--admin URL] [--state-dir DIR]
  chancery rotate-xds-ca begin|finish [--admin URL] [--state-dir DIR]
  chancery store-key FILE

Run "chancery <command> --help" for the options of one command.`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  serve: runServe,
  bootstrap: runBootstrap,
  check: runCheck,
  credential: runCredential,
  render: runRender,
  explain: runExplain,
  graph: runGraph,
  diff: runDiff,
  history: runHistory,
  status: runStatus,
  'rotate-root': runRotateRoot,
  revoke: runRevoke,
  'rotate-xds-ca': runRotateXdsCa,
  'store-key': runStoreKey,
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    console.log(USAGE);
    return 0;
  }
  const run = COMMANDS[cmd];
  if (!run) {
    console.error(`chancery: unknown command "${cmd}"\n\n${USAGE}`);
    return 2;
  }
  return run(rest);
}
