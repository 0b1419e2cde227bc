/**
 * `chancery bootstrap`: writes the Envoy bootstrap for one workload's sidecar, with its xDS token and the xDS CA
 * that the control plane's server certificate chains to (from the control plane's state directory, created there if
 * this runs first; refused, naming the file, if that state is damaged).
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { stringify } from 'yaml';
import { ADDRESS_METADATA } from '../app/registrations.js';
import { groupOfInstance, type Group } from '../model/groups.js';
import type { Workload } from '../model/mesh-model.js';
import { GroupGenerations } from '../server/group-generations.js';
import { openState } from '../app/state-dir.js';
import { systemClock } from '../ca/clock.js';
import { compileSource } from '../compiler.js';
import { formatHuman } from '../diag/format.js';
import { controlPlaneIdentity } from '../model/mesh-model.js';
import { parseDurationMs } from '../policy/reader.js';
import { isLoopback } from '../model/sidecars.js';
import { MAX_TOKEN_TTL_SECONDS } from '../server/proxy-auth.js';
import { readDirectory } from '../source/directory.js';
import { writeFileAtomic } from '../util/files.js';
import { buildBootstrap } from '../xds/bootstrap.js';
import { command, DEFAULT_CONFIG_DIR, parse, parseHostPort, parsePort, UsageError } from './args.js';

const HELP = `Usage: chancery bootstrap [--config DIR] --workload NAMESPACE/NAME [options]
       chancery bootstrap [--config DIR] --group NAMESPACE/GROUP [--address IP] [--name NAME] [options]

  --group NS/GROUP        a bootstrap for an instance of a WorkloadGroup: it carries the group's token, and the
                          instance registers itself when its Envoy connects (revoke with chancery revoke --group)
  --address IP            the instance's address (default: the address its connection to the control plane
                          comes from)
  --name NAME             the instance's name, GROUP-<something> (default: GROUP-<address>, or GROUP-<random>)

  --out FILE              write to FILE (.json for JSON, otherwise YAML); default: stdout
  --sotw                  use State-of-the-World ADS instead of Delta
  --xds-address HOST:PORT[,HOST:PORT...]
                          control plane address (default 127.0.0.1:15010); with replicas, list them all: Envoy
                          connects to one and fails over to another by itself
  --plaintext             connect to a plaintext xDS port (only for control planes started with one)
  --state-dir DIR         the control plane's state (CA and token key; default .chancery)
  --token-ttl DURATION    lifetime of the embedded xDS token (default 720h, at most 8760h)
  --admin-address H:P     Envoy admin listener (default: the workload's address if it is loopback, else 127.0.0.1; port 15000)
  --initial-fetch-timeout D  how long Envoy waits for its first config before starting anyway (default 10s)
  --prometheus-port PORT  serve Envoy's Prometheus stats on the workload's address at /stats/prometheus (default 15090; 0: off)`;

/** Envoy admin default: the workload's own address when it is loopback (many sidecars on one machine), else 127.0.0.1. */
export function defaultAdminAddress(workloadAddress: string): { host: string; port: number } {
  return { host: isLoopback(workloadAddress) ? workloadAddress : '127.0.0.1', port: 15000 };
}

export function runBootstrap(argv: string[]): Promise<number> {
  return command(HELP, argv, async () => {
    const { values } = parse(argv, {
      config: { type: 'string', default: DEFAULT_CONFIG_DIR },
      workload: { type: 'string' },
      group: { type: 'string' },
      address: { type: 'string' },
      name: { type: 'string' },
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
    if (!values.workload === !values.group) {
      throw new UsageError('one of --workload NAMESPACE/NAME or --group NAMESPACE/GROUP is required');
    }
    const groupOnly = values.address || values.name;
    if (values.workload && groupOnly) throw new UsageError('--address and --name go with --group');
    if (values.address && isIP(values.address) === 0) {
      throw new UsageError(`--address: "${values.address}" is not an IP address`);
    }
    if (!/^\d+(\.\d+)?s$/.test(values['initial-fetch-timeout']!))
      throw new UsageError('--initial-fetch-timeout must be seconds, e.g. 10s');
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
    const stateDir = values['state-dir']!;
    const ttl = Math.round(ttlMs / 1000);
    const node = values.group
      ? groupNode(result.model.groups, values.group, values.address, values.name, stateDir)
      : workloadNode(result.model.workloads, values.workload!);
    if (typeof node === 'string') {
      console.error(`chancery: ${node}`);
      return 1;
    }
    const xds = values['xds-address']!.split(',').map((a) => parseHostPort(a.trim(), '--xds-address'));
    const adminFlag = values['admin-address'];
    const admin = adminFlag ? parseHostPort(adminFlag, '--admin-address') : defaultAdminAddress(node.address);
    const mesh = result.model.mesh;
    const serverIdentity = controlPlaneIdentity(mesh.trustDomain, mesh.rootNamespace);
    const state = await openState({ stateDir, clock: systemClock, workloadCa: false });
    const token = node.group
      ? await state.tokens.issueGroup(node.group.id, node.group.generation, ttl)
      : await state.tokens.issue(node.id, ttl);
    const config = buildBootstrap({
      nodeId: node.id,
      cluster: node.namespace,
      metadata: node.metadata,
      xds,
      admin: { address: admin.host, port: admin.port },
      variant: values.sotw ? 'sotw' : 'delta',
      initialFetchTimeout: values['initial-fetch-timeout']!,
      token,
      ...(promPort > 0 ? { prometheus: { address: node.address, port: promPort } } : {}),
      ...(values.plaintext ? {} : { tls: { trustBundlePem: state.xdsCa.bootstrapTrustPem(), serverIdentity } }),
    });
    const text = values.out?.endsWith('.json')
      ? JSON.stringify(config, null, 2) + '\n'
      : stringify(config, { aliasDuplicateObjects: false });
    if (values.out)
      writeFileAtomic(values.out, text); // Envoy (or a watcher) never reads half a bootstrap
    else process.stdout.write(text);
    return 0;
  });
}

interface NodeOfBootstrap {
  id: string;
  namespace: string;
  /** Where its listeners are: the workload's address (0.0.0.0 for an instance that does not know its own). */
  address: string;
  metadata: Record<string, string>;
  group?: { id: string; generation: number };
}

function workloadNode(workloads: readonly Workload[], id: string): NodeOfBootstrap | string {
  const w = workloads.find((x) => x.id === id && !x.registered);
  const known = workloads.filter((x) => !x.registered).map((x) => x.id);
  if (!w) return `no WorkloadEntry "${id}"; known: ${known.join(', ') || 'none'}`;
  const metadata = { 'chancery.dev/workload': w.id, 'chancery.dev/identity': w.identity };
  return { id: w.id, namespace: w.namespace, address: w.address, metadata };
}

/** The node of a WorkloadGroup instance: a name inside the group, and the address it will register with. */
function groupNode(
  groups: readonly Group[],
  groupId: string,
  address: string | undefined,
  name: string | undefined,
  stateDir: string,
): NodeOfBootstrap | string {
  const g = groups.find((x) => x.id === groupId);
  if (!g) return `no WorkloadGroup "${groupId}"; known: ${groups.map((x) => x.id).join(', ') || 'none'}`;
  const suffix = address ? address.replaceAll(/[.:]/g, '-').replace(/^-+|-+$/g, '') : randomBytes(4).toString('hex');
  const id = `${g.namespace}/${name ?? `${g.name}-${suffix}`}`;
  const owner = groupOfInstance(groups, id);
  if (owner?.id !== g.id) {
    const form = `it must be ${g.name}-<something> (lower-case letters, digits, -, .)`;
    const why = owner ? `it is a name of ${owner.id}` : form;
    return `--name ${name}: not a name inside ${g.id}: ${why}`;
  }
  const metadata: Record<string, string> = { 'chancery.dev/group': g.id, 'chancery.dev/identity': g.identity };
  if (address) metadata[ADDRESS_METADATA] = address;
  const generation = GroupGenerations.open(stateDir).generation(g.id);
  return { id, namespace: g.namespace, address: address ?? '0.0.0.0', metadata, group: { id: g.id, generation } };
}
