/**
 * Stage: model. WorkloadGroups and the instances registered into them. A registered instance becomes a
 * WorkloadEntry made from its group's template, with the instance's address, and joins the committed ones at the
 * start of the model build: everything after that (services, policies, per-proxy compile) treats it as any other
 * workload. Which group a name belongs to is decided here, once, for the registry and the build alike.
 */
import type { Origin } from '../diag/diagnostic.js';
import type { MeshSpec, PolicyObject, WorkloadEntry, WorkloadGroup } from '../policy/types.js';
import { labelsMatch, spiffeId } from './mesh-model.js';

/** A WorkloadGroup as the model and the registry see it. */
export interface Group {
  /** `namespace/name`. */
  id: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  ports: Record<string, number>;
  serviceAccount: string;
  identity: string;
  locality?: string;
  weight?: number;
  /** The group's annotation, else the Mesh default. */
  maxInstances: number;
  /** The template: the origin of every instance's configuration. */
  origin: Origin;
}

/** An instance that connected with its group's token: all the registry knows of it. */
export interface RegisteredInstance {
  /** `namespace/name`: its node id. */
  id: string;
  /** `namespace/name` of its WorkloadGroup. */
  group: string;
  address: string;
}

export function collectGroups(objects: readonly PolicyObject[], mesh: MeshSpec): Group[] {
  const out: Group[] = [];
  for (const o of objects) {
    if (o.kind !== 'WorkloadGroup') continue;
    out.push(groupOf(o, mesh));
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Per decoded WorkloadGroup and Mesh (both keep their identity while their files do not change). */
const memo = new WeakMap<WorkloadGroup, WeakMap<MeshSpec, Group>>();

function groupOf(g: WorkloadGroup, mesh: MeshSpec): Group {
  let byMesh = memo.get(g);
  if (!byMesh) memo.set(g, (byMesh = new WeakMap()));
  let group = byMesh.get(mesh);
  if (!group) byMesh.set(mesh, (group = makeGroup(g, mesh)));
  return group;
}

function makeGroup(g: WorkloadGroup, mesh: MeshSpec): Group {
  const sa = g.spec.serviceAccount ?? 'default';
  const { namespace, name } = g.meta;
  return {
    id: `${namespace}/${name}`,
    namespace,
    name,
    labels: g.spec.labels,
    annotations: g.spec.annotations,
    ports: g.spec.ports,
    serviceAccount: sa,
    identity: spiffeId(mesh.trustDomain, namespace, sa),
    ...(g.spec.locality !== undefined ? { locality: g.spec.locality } : {}),
    ...(g.spec.weight !== undefined ? { weight: g.spec.weight } : {}),
    maxInstances: g.spec.maxInstances ?? mesh.maxInstancesPerGroup,
    origin: g.at['spec.template'] ?? g.origin,
  };
}

/** What a WorkloadEntry name may be (metadata.name of any object). */
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * The group a node id `namespace/name` belongs to: the group of that namespace whose name followed by `-` is the
 * longest prefix of the name (so `api-v2-x` is api-v2's, never api's), or undefined.
 */
export function groupOfInstance(groups: readonly Group[], nodeId: string): Group | undefined {
  const slash = nodeId.indexOf('/');
  const ns = nodeId.slice(0, slash);
  const name = nodeId.slice(slash + 1);
  if (slash <= 0 || name.length > 253 || !NAME.test(name)) return undefined;
  let best: Group | undefined;
  for (const g of groups) {
    if (g.namespace !== ns || !name.startsWith(`${g.name}-`) || name.length === g.name.length + 1) continue;
    if (!best || g.name.length > best.name.length) best = g;
  }
  return best;
}

/**
 * The WorkloadEntries of registered instances: one per instance whose group exists and owns its name, and whose
 * name no committed WorkloadEntry has (a committed one always wins; the registry then drops the instance).
 */
export function registeredEntries(
  groups: readonly Group[],
  instances: readonly RegisteredInstance[],
  committed: ReadonlySet<string>,
): WorkloadEntry[] {
  const out: WorkloadEntry[] = [];
  const kept = new Map<Group, Set<string>>();
  for (const r of instances) {
    const g = groupOfInstance(groups, r.id);
    if (!g || g.id !== r.group || committed.has(r.id)) continue;
    out.push(entryOf(g, r));
    kept.set(g, (kept.get(g) ?? new Set()).add(r.id));
  }
  // Instances that left are forgotten (a fleet's churn must not grow the memo).
  for (const g of groups) {
    const byId = entries.get(g);
    if (byId) for (const id of byId.keys()) if (!kept.get(g)?.has(id)) byId.delete(id);
  }
  return out;
}

/** Entries per (group, instance), kept while both are the same objects, so unchanged workloads stay identical. */
const entries = new WeakMap<Group, Map<string, { r: RegisteredInstance; entry: WorkloadEntry }>>();

function entryOf(g: Group, r: RegisteredInstance): WorkloadEntry {
  let byId = entries.get(g);
  if (!byId) entries.set(g, (byId = new Map()));
  const hit = byId.get(r.id);
  if (hit && hit.r.address === r.address) return hit.entry;
  const entry: WorkloadEntry = {
    kind: 'WorkloadEntry',
    apiVersion: 'networking.istio.io/v1',
    meta: { namespace: g.namespace, name: r.id.slice(g.namespace.length + 1), labels: {} },
    origin: g.origin,
    at: {},
    spec: {
      address: r.address,
      ports: g.ports,
      labels: g.labels,
      serviceAccount: g.serviceAccount,
      ...(g.locality !== undefined ? { locality: g.locality } : {}),
      ...(g.weight !== undefined ? { weight: g.weight } : {}),
    },
    registered: { group: g.id },
  };
  byId.set(r.id, { r, entry });
  return entry;
}

/** Whether some group's instances would be selected (a selector that matches no instance yet is not a mistake). */
export function groupSelected(groups: readonly Group[], namespace: string, selector: Record<string, string>): boolean {
  return groups.some((g) => g.namespace === namespace && labelsMatch(selector, g.labels));
}
