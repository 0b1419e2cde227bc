/**
 * Stage: snapshot. An immutable per-proxy snapshot: for each type, the resources by name with their shared
 * encodings, a per-type version (hash of sorted name:version pairs) and an overall version.
 */
import type { ResourceSet } from '../xds/translate.js';
import { PUSH_ORDER, type TypeUrl } from '../xds/type-urls.js';
import { setVersion } from './canonical.js';
import type { EncodedResource, ResourceCache } from './resource-cache.js';

export interface TypeSnapshot {
  version: string;
  resources: ReadonlyMap<string, EncodedResource>;
}

export interface Snapshot {
  proxyId: string;
  revision: string;
  version: string;
  types: ReadonlyMap<TypeUrl, TypeSnapshot>;
}

export function buildSnapshot(proxyId: string, revision: string, set: ResourceSet, cache: ResourceCache): Snapshot {
  const types = new Map<TypeUrl, TypeSnapshot>();
  for (const typeUrl of PUSH_ORDER) {
    const resources = new Map<string, EncodedResource>();
    for (const r of set.get(typeUrl) ?? []) {
      if (resources.has(r.name)) throw new Error(`bug: duplicate ${typeUrl} resource name ${r.name} for ${proxyId}`);
      resources.set(r.name, cache.get(typeUrl, r.name, r.json, r.origins));
    }
    types.set(typeUrl, { version: setVersion(resources.values()), resources });
  }
  const version = setVersion([...types.entries()].map(([t, s]) => ({ name: t, version: s.version })));
  return { proxyId, revision, version, types };
}

/** The resources of one type as a TypeSnapshot, to share between the snapshots that hold exactly them. */
export function typeSnapshot(resources: ReadonlyMap<string, EncodedResource>): TypeSnapshot {
  return { version: setVersion(resources.values()), resources };
}

/** Adds or replaces resources of one type (the fast path for secrets). */
export function withResources(snap: Snapshot, typeUrl: TypeUrl, replace: TypeSnapshot): Snapshot {
  const types = new Map(snap.types);
  types.set(typeUrl, replace);
  const version = setVersion([...types.entries()].map(([t, s]) => ({ name: t, version: s.version })));
  return { ...snap, types, version };
}
