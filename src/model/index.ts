/**
 * Stage: model. Lookup indexes over an (immutable) MeshModel, built once per model on first use, so per-proxy
 * compilation does not scan every service or workload for each proxy (which made compile time quadratic).
 */
import type { MeshModel, Service, Workload } from './mesh-model.js';

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
    for (const s of model.services) servicesByNamespace.set(s.namespace, [...(servicesByNamespace.get(s.namespace) ?? []), s]);
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
  return indexOf(model).serviceByHost.get(host);
}

export function servicesInNamespace(model: MeshModel, ns: string): Service[] {
  return indexOf(model).servicesByNamespace.get(ns) ?? [];
}

export function workloadById(model: MeshModel, id: string | undefined): Workload | undefined {
  return id === undefined ? undefined : indexOf(model).workloadById.get(id);
}

/** Memoizes `fn(model, key)` per model. */
export function memoPerModel<K, V>(fn: (model: MeshModel, key: K) => V): (model: MeshModel, key: K) => V {
  const caches = new WeakMap<MeshModel, Map<K, V>>();
  return (model, key) => {
    let c = caches.get(model);
    if (!c) caches.set(model, (c = new Map()));
    if (!c.has(key)) c.set(key, fn(model, key));
    return c.get(key)!;
  };
}
