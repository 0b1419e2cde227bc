/**
 * Stage: model. Policy objects -> MeshModel. Resolves selectors and references and reports cross-resource
 * problems (duplicates, unknown references, conflicts) with the origin of the offending field.
 */
import { checkExternalServices } from './external-services.js';
import { Diagnostics, type Result } from '../diag/diagnostic.js';
import {
  MESH_DEFAULTS,
  objectRef,
  type MeshPolicy,
  type PolicyObject,
  type ServiceEntry,
  type Sidecar,
  type WorkloadEntry,
} from '../policy/types.js';
import { runSteps } from '../util/steps.js';
import { selectByLabels } from './index.js';
import { collectGroups, groupSelected, registeredEntries, type Group, type RegisteredInstance } from './groups.js';
import { CONTROL_PLANE_SERVICE_ACCOUNT, controlPlaneIdentity, spiffeId } from './mesh-model.js';
import type { MeshModel, Service, ServiceEndpoint, Workload } from './mesh-model.js';
import { checkListenerConflicts, checkSidecarHosts, noteServiceShapes } from './sidecars.js';
import { checkSecurity, collectSecurity } from './security.js';
import { checkExtAuthz } from './ext-authz.js';
import { checkTelemetry, collectTelemetry } from './telemetry.js';
import { checkRouting, collectRouting } from './routing.js';
import { adviseSidecars } from './sidecars.js';
import { checkGateways, collectGateways } from './gateways.js';
import { checkL4Gateways } from './gateway-l4.js';

/**
 * Builds the model of a revision. With the previous revision's model, services and workloads that came out the same
 * are that model's objects, so what is derived from them (hashes, shared clusters) is recognised as unchanged.
 */
export function buildModel(
  objects: readonly PolicyObject[],
  revision: string,
  previous?: MeshModel,
  registered: readonly RegisteredInstance[] = [],
): Result<MeshModel> {
  return runSteps(buildModelSteps(objects, revision, previous, registered));
}

/** buildModel as steps, pausing between its phases (see util/steps.ts). */
/** `registered`: instances of WorkloadGroups, added as WorkloadEntries made from their group's template. */
export function* buildModelSteps(
  objects: readonly PolicyObject[],
  revision: string,
  previous?: MeshModel,
  registered: readonly RegisteredInstance[] = [],
): Generator<void, Result<MeshModel>> {
  const diags = new Diagnostics();
  const unique = dropDuplicates(objects, diags);
  const meshes = unique.filter((o): o is MeshPolicy => o.kind === 'Mesh');
  for (const extra of meshes.slice(1)) {
    diags.report('CH0405', `only one Mesh is allowed; ${objectRef('Mesh', meshes[0].meta)} is already defined`, {
      location: extra.origin,
      object: objectRef('Mesh', extra.meta),
      related: [{ message: 'first Mesh', location: meshes[0].origin }],
    });
  }
  const mesh = meshes[0]?.spec ?? MESH_DEFAULTS;
  const entries = unique.filter((o): o is ServiceEntry => o.kind === 'ServiceEntry');
  const committed = unique.filter((o): o is WorkloadEntry => o.kind === 'WorkloadEntry');
  const groups = collectGroups(unique, mesh);
  const committedIds = new Set(committed.map((we) => `${we.meta.namespace}/${we.meta.name}`));
  const workloadEntries = [...committed, ...registeredEntries(groups, registered, committedIds)];
  const sidecars = unique.filter((o): o is Sidecar => o.kind === 'Sidecar');

  const workloads: Workload[] = workloadEntries.map((we) => {
    const sa = we.spec.serviceAccount ?? 'default';
    return {
      id: `${we.meta.namespace}/${we.meta.name}`,
      namespace: we.meta.namespace,
      name: we.meta.name,
      address: we.spec.address,
      labels: { ...we.spec.labels, ...we.meta.labels },
      ports: we.spec.ports,
      serviceAccount: sa,
      identity: spiffeId(mesh.trustDomain, we.meta.namespace, sa),
      services: [],
      ...(we.spec.locality !== undefined ? { locality: we.spec.locality } : {}),
      ...(we.spec.weight !== undefined ? { weight: we.spec.weight } : {}),
      ...(we.registered ? { registered: we.registered } : {}),
      origin: we.origin,
    };
  });

  checkReservedIdentity(unique, mesh, diags);

  const services: Service[] = [];
  const byHost = new Map<string, ServiceEntry>();
  const byAddress = new Map<string, ServiceEntry>();
  const workloadsById = new Map(workloads.map((w) => [w.id, w]));
  for (const se of entries) {
    const ref = objectRef('ServiceEntry', se.meta);
    const selector = se.spec.workloadSelector;
    let selected: Workload[] = [];
    if (selector) {
      selected = selectByLabels(workloads, se.meta.namespace, selector);
      if (selected.length === 0 && !groupSelected(groups, se.meta.namespace, selector)) {
        diags.report('CH0303', `workloadSelector matches no WorkloadEntry in namespace ${se.meta.namespace}`, {
          location: se.at['spec.workloadSelector'] ?? se.origin,
          path: 'spec.workloadSelector',
          object: ref,
        });
      }
    }
    se.spec.hosts.forEach((host, i) => {
      const prev = byHost.get(host);
      if (prev) {
        diags.report('CH0402', `host ${host} is already declared by ${objectRef('ServiceEntry', prev.meta)}`, {
          location: se.at[`spec.hosts[${i}]`] ?? se.origin,
          path: `spec.hosts[${i}]`,
          object: ref,
          related: [{ message: 'first declared here', location: prev.origin }],
        });
        return;
      }
      byHost.set(host, se);
      for (const w of selected) workloadsById.get(w.id)?.services.push(host);
      services.push(selector ? serviceOf(se, host, selected) : inlineService(se, host));
    });
    // An address routes (and, for TCP, listens) like its service's host: it can stand for one service only.
    se.spec.addresses.forEach((address, i) => {
      const prev = byAddress.get(address);
      if (!prev) return void byAddress.set(address, se);
      diags.report('CH0402', `address ${address} is already the address of ${objectRef('ServiceEntry', prev.meta)}`, {
        location: se.at[`spec.addresses[${i}]`] ?? se.origin,
        path: `spec.addresses[${i}]`,
        object: ref,
        related: [{ message: 'first declared here', location: prev.origin }],
      });
    });
  }
  yield;
  services.sort((a, b) => cmp(a.host, b.host));
  for (const w of workloads) w.services.sort();

  const namespaces = [...new Set(unique.filter((o) => o.meta.namespace).map((o) => o.meta.namespace))].sort();
  attachSidecars(sidecars, workloads, groups, mesh.rootNamespace, diags);
  workloads.sort((a, b) => cmp(a.id, b.id));
  if (previous) {
    keepUnchanged(services, previous.services, (x) => x.host);
    keepUnchanged(workloads, previous.workloads, (x) => x.id);
  }
  const model: MeshModel = {
    revision,
    mesh,
    ...(meshes[0] ? { meshOrigin: meshes[0].origin } : {}),
    services,
    workloads,
    groups,
    namespaces,
    security: collectSecurity(unique),
    telemetry: collectTelemetry(unique),
    routing: collectRouting(unique, diags),
    gateways: collectGateways(unique, diags),
  };
  if (previous) {
    // Unchanged policy lists stay the same arrays, so values derived from them per workload are memoized.
    const sec = model.security;
    const was = previous.security;
    model.security = {
      peerAuthentications: sameList(sec.peerAuthentications, was.peerAuthentications),
      authorizationPolicies: sameList(sec.authorizationPolicies, was.authorizationPolicies),
      requestAuthentications: sameList(sec.requestAuthentications, was.requestAuthentications),
    };
    model.telemetry = sameList(model.telemetry, previous.telemetry);
    model.routing.rateLimits = sameList(model.routing.rateLimits, previous.routing.rateLimits);
    model.gateways.list = sameList(model.gateways.list, previous.gateways.list);
    model.services = sameList(model.services, previous.services);
    if (same(model.mesh, previous.mesh, 6)) model.mesh = previous.mesh;
    noteServiceShapes(model.services, previous.services);
  }
  yield;
  for (const [i, sc] of sidecars.entries()) {
    checkSidecarHosts(sc, model, diags);
    if (i % 200 === 199) yield;
  }
  yield;
  checkListenerConflicts(model, diags);
  yield;
  checkSecurity(model, diags);
  checkExtAuthz(model, diags);
  checkTelemetry(model, diags);
  checkRouting(model, diags);
  checkExternalServices(model, diags);
  checkGateways(model, diags);
  checkL4Gateways(model, diags);
  adviseSidecars(model, diags);
  return { value: model, diagnostics: diags.items };
}

/**
 * The control plane's own SPIFFE id is not for workloads: a proxy holding it could pose as the xDS server to any
 * peer that trusts the mesh root (and did, before bootstraps trusted only the xDS CA). The CA refuses it too.
 */
function checkReservedIdentity(objects: readonly PolicyObject[], mesh: MeshPolicy['spec'], diags: Diagnostics): void {
  for (const o of objects) {
    if (o.kind !== 'WorkloadEntry' && o.kind !== 'WorkloadGroup') continue;
    if (o.meta.namespace !== mesh.rootNamespace || o.spec.serviceAccount !== CONTROL_PLANE_SERVICE_ACCOUNT) continue;
    // A group's template: no instance of it may register as the control plane either.
    const path = o.kind === 'WorkloadGroup' ? 'spec.template.serviceAccount' : 'spec.serviceAccount';
    const id = controlPlaneIdentity(mesh.trustDomain, mesh.rootNamespace);
    const message =
      `serviceAccount ${CONTROL_PLANE_SERVICE_ACCOUNT} in the root namespace is ${id}, ` +
      "the control plane's own identity; use another service account";
    diags.report('CH0409', message, { location: o.at[path] ?? o.origin, path, object: objectRef(o.kind, o.meta) });
  }
}

function dropDuplicates(objects: readonly PolicyObject[], diags: Diagnostics): PolicyObject[] {
  const seen = new Map<string, PolicyObject>();
  const out: PolicyObject[] = [];
  for (const o of objects) {
    const key = objectRef(o.kind, o.meta);
    const prev = seen.get(key);
    if (prev) {
      diags.report('CH0401', `${key} is defined twice`, {
        location: o.origin,
        object: key,
        related: [{ message: 'first definition', location: prev.origin }],
      });
      continue;
    }
    seen.set(key, o);
    out.push(o);
  }
  return out;
}

/**
 * Istio's rule: a Sidecar with a workloadSelector applies to the workloads it selects in its namespace; a
 * selector-less Sidecar is the namespace default; one in the root namespace is the mesh default.
 */
function attachSidecars(
  sidecars: Sidecar[],
  workloads: Workload[],
  groups: readonly Group[],
  rootNamespace: string,
  diags: Diagnostics,
): void {
  const nsDefaults = new Map<string, Sidecar>();
  for (const sc of sidecars) {
    if (sc.spec.workloadSelector) continue;
    const prev = nsDefaults.get(sc.meta.namespace);
    if (prev) {
      const other = objectRef('Sidecar', prev.meta);
      diags.report(
        'CH0403',
        `namespace ${sc.meta.namespace} already has a Sidecar without workloadSelector (${other})`,
        {
          location: sc.origin,
          object: objectRef('Sidecar', sc.meta),
          related: [{ message: 'the other one', location: prev.origin }],
        },
      );
      continue;
    }
    nsDefaults.set(sc.meta.namespace, sc);
  }
  for (const sc of sidecars) {
    const selector = sc.spec.workloadSelector;
    if (!selector) continue;
    const selected = selectByLabels(workloads, sc.meta.namespace, selector);
    if (selected.length === 0 && !groupSelected(groups, sc.meta.namespace, selector)) {
      diags.report('CH0303', `workloadSelector matches no WorkloadEntry in namespace ${sc.meta.namespace}`, {
        location: sc.at['spec.workloadSelector'] ?? sc.origin,
        path: 'spec.workloadSelector',
        object: objectRef('Sidecar', sc.meta),
      });
    }
    for (const w of selected) {
      if (w.sidecar) {
        diags.report(
          'CH0403',
          `workload ${w.id} is selected by two Sidecars: ${w.sidecar.ref} and ${objectRef('Sidecar', sc.meta)}`,
          {
            location: sc.at['spec.workloadSelector'] ?? sc.origin,
            object: objectRef('Sidecar', sc.meta),
            related: [{ message: 'the other Sidecar', location: w.sidecar.origin }],
          },
        );
        continue;
      }
      w.sidecar = { ref: objectRef('Sidecar', sc.meta), spec: sc.spec, origin: sc.origin };
    }
  }
  for (const w of workloads) {
    if (w.sidecar) continue;
    const def = nsDefaults.get(w.namespace) ?? nsDefaults.get(rootNamespace);
    if (def) w.sidecar = { ref: objectRef('Sidecar', def.meta), spec: def.spec, origin: def.origin };
  }
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function serviceOf(se: ServiceEntry, host: string, selected: readonly Workload[]): Service {
  const endpoints: ServiceEndpoint[] = selected.map((w) => ({
    address: w.address,
    ports: w.ports,
    labels: w.labels,
    serviceAccount: w.serviceAccount,
    ...(w.locality !== undefined ? { locality: w.locality } : {}),
    ...(w.weight !== undefined ? { weight: w.weight } : {}),
    workload: w.id,
    origin: w.origin,
  }));
  return {
    host,
    namespace: se.meta.namespace,
    name: se.meta.name,
    ports: se.spec.ports,
    location: se.spec.location,
    resolution: se.spec.resolution,
    addresses: se.spec.addresses,
    subjectAltNames: se.spec.subjectAltNames,
    endpoints: endpoints.sort(byAddress),
    origin: se.origin,
  };
}

const byAddress = (a: ServiceEndpoint, b: ServiceEndpoint) =>
  cmp(`${a.address}|${a.workload ?? ''}`, `${b.address}|${b.workload ?? ''}`);

/** A service with inline endpoints depends on its ServiceEntry alone: built once per decoded entry and host. */
const inlineServices = new WeakMap<ServiceEntry, Map<string, Service>>();

function inlineService(se: ServiceEntry, host: string): Service {
  let byHost = inlineServices.get(se);
  if (!byHost) inlineServices.set(se, (byHost = new Map()));
  let svc = byHost.get(host);
  if (!svc) {
    const endpoints = se.spec.endpoints.map((e) => ({
      ...e,
      serviceAccount: e.serviceAccount ?? 'default',
      origin: se.origin,
    }));
    svc = { ...serviceOf(se, host, []), endpoints: endpoints.sort(byAddress) };
    byHost.set(host, svc);
  }
  return svc;
}

/** `prev` when it holds the same objects as `next`. */
function sameList<T>(next: T[], prev: T[]): T[] {
  return next.length === prev.length && next.every((x, i) => x === prev[i]) ? prev : next;
}

/** Replaces each item of `next` that equals its namesake in `prev` with that (older) object. */
function keepUnchanged<T extends object>(next: T[], prev: readonly T[], key: (x: T) => string): void {
  const before = new Map(prev.map((x) => [key(x), x]));
  next.forEach((x, i) => {
    const old = before.get(key(x));
    if (old && same(x, old, 4)) next[i] = old;
  });
}

/** Structural equality down to `depth` levels, identity below: decoded policy parts keep their identity. */
function same(a: unknown, b: unknown, depth: number): boolean {
  if (a === b) return true;
  if (depth === 0 || typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i], depth - 1));
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], depth - 1));
}
