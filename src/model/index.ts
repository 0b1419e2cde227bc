/**
 * Stage: model. Lookup indexes over an (immutable) MeshModel, built once per model on first use, so per-proxy
 * compilation does not scan every service or workload for each proxy (which made compile time quadratic).
 */
import type { MeshModel, Service, Workload } from './mesh-model.js';
import { track, untracked } from './tracking.js';

interface Index {
  serviceByHost: Map<string, Service>;
  servicesByNamespace: Map<string, Service[]>;
  workloadById: Map<string, Workload>;
}

const indexes = new WeakMap<MeshModel, Index>();

function indexOf(model: MeshModel): Index {
  let ix = indexes.get(model);
  if (!ix) {
    const servicesByNamespace = new Map<string, Service[]>();
    for (const s of model.services) {
      const list = servicesByNamespace.get(s.namespace);
      if (list) list.push(s);
      else servicesByNamespace.set(s.namespace, [s]);
    }
    ix = {
      serviceByHost: new Map(model.services.map((s) => [s.host, s])),
      servicesByNamespace,
      workloadById: new Map(model.workloads.map((w) => [w.id, w])),
    };
    indexes.set(model, ix);
  }
  return ix;
}

export function serviceByHost(model: MeshModel, host: string): Service | undefined {
  track(`svc:${host}`);
  return indexOf(model).serviceByHost.get(host);
}

/** A service without its endpoints: what its own workloads' inbound listeners are made from. */
export type ServiceHead = Omit<Service, 'endpoints'>;

const heads = new WeakMap<Service, ServiceHead>();

/**
 * The service of `host` without its endpoints, tracked as `svchead:<host>`: an instance joining or leaving the
 * service changes its endpoints, not what its other instances listen on, so they are not compiled again.
 */
export function serviceHeadByHost(model: MeshModel, host: string): ServiceHead | undefined {
  track(`svchead:${host}`);
  const svc = indexOf(model).serviceByHost.get(host);
  if (!svc) return undefined;
  let head = heads.get(svc);
  if (!head) {
    const { endpoints: _, ...rest } = svc;
    heads.set(svc, (head = rest));
  }
  return head;
}

export function servicesInNamespace(model: MeshModel, ns: string): Service[] {
  track(`svcs:${ns}`);
  return indexOf(model).servicesByNamespace.get(ns) ?? [];
}

export function workloadById(model: MeshModel, id: string | undefined): Workload | undefined {
  if (id !== undefined) track(`wl:${id}`);
  return id === undefined ? undefined : indexOf(model).workloadById.get(id);
}

/** Memoizes `fn(model, key)` per model. The computation is not tracked: callers track the key of the result. */
export function memoPerModel<K, V>(fn: (model: MeshModel, key: K) => V): (model: MeshModel, key: K) => V {
  const caches = new WeakMap<MeshModel, Map<K, V>>();
  return (model, key) => {
    let c = caches.get(model);
    if (!c) caches.set(model, (c = new Map()));
    if (!c.has(key))
      c.set(
        key,
        untracked(() => fn(model, key)),
      );
    return c.get(key)!;
  };
}

/**
 * Workloads a label selector picks in a namespace, through an index of (namespace, label=value) pairs, so that
 * selecting does not scan every workload.
 */
export function selectByLabels<T extends { namespace: string; labels: Record<string, string> }>(
  items: readonly T[],
  ns: string,
  selector: Record<string, string>,
): T[] {
  const entries = Object.entries(selector);
  if (entries.length === 0) return items.filter((w) => w.namespace === ns);
  const ix = labelIndex(items);
  let best: T[] | undefined;
  for (const [k, v] of entries) {
    const list = ix.get(`${ns}\0${k}=${v}`) ?? [];
    if (!best || list.length < best.length) best = list;
  }
  return (best ?? []).filter((w) => entries.every(([k, v]) => w.labels[k] === v));
}

const labelIndexes = new WeakMap<readonly unknown[], Map<string, unknown[]>>();

function labelIndex<T extends { namespace: string; labels: Record<string, string> }>(
  items: readonly T[],
): Map<string, T[]> {
  let ix = labelIndexes.get(items) as Map<string, T[]> | undefined;
  if (!ix) {
    ix = new Map();
    for (const w of items) {
      for (const [k, v] of Object.entries(w.labels)) {
        const key = `${w.namespace}\0${k}=${v}`;
        const list = ix.get(key);
        if (list) list.push(w);
        else ix.set(key, [w]);
      }
    }
    labelIndexes.set(items, ix as Map<string, unknown[]>);
  }
  return ix;
}
