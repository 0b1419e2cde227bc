/**
 * Stage: xds. ProxyIR -> ResourceSet: the Envoy resources (proto3 JSON) one proxy receives, per type URL, sorted by
 * name, each with the policy origins it came from (for NACK attribution and config dumps).
 */
import type { Origin } from '../diag/diagnostic.js';
import type { ClusterIR, ProxyIR, RouteTableKey } from '../ir/types.js';
import { clusterName, listenerName, routeTableName } from './names.js';
import { buildCluster } from './resources/cluster.js';
import { buildLoadAssignment } from './resources/endpoint.js';
import { buildListener } from './resources/listener.js';
import { buildRouteConfiguration } from './resources/route.js';
import { PUSH_ORDER, TYPE, type TypeUrl } from './type-urls.js';

export interface XdsResource {
  typeUrl: TypeUrl;
  name: string;
  /** proto3 JSON, snake_case field names, `@type` on every Any. */
  json: object;
  origins: Origin[];
}

export type ResourceSet = Map<TypeUrl, XdsResource[]>;

export function translateProxy(ir: ProxyIR): ResourceSet {
  const set: ResourceSet = new Map(PUSH_ORDER.map((t) => [t, []]));
  const add = (typeUrl: TypeUrl, name: string, json: object, origins: Origin[]): void => {
    set.get(typeUrl)!.push({ typeUrl, name, json, origins: dedupeOrigins(origins) });
  };
  for (const c of ir.clusters) {
    const t = translatedCluster(c);
    set.get(TYPE.cluster)!.push(t.cluster);
    if (t.endpoints) set.get(TYPE.endpoint)!.push(t.endpoints);
  }
  const tables = new Map(ir.routeTables.map((t) => [routeTableName(t.key), t]));
  const routesOf = (k: RouteTableKey) => tables.get(routeTableName(k))?.virtualHosts.flatMap((v) => v.routes) ?? [];
  const ctx = { routesOf };
  for (const l of ir.listeners)
    add(TYPE.listener, listenerName(l.direction, l.address, l.port), buildListener(l, ctx), l.origins);
  for (const t of ir.routeTables) {
    add(
      TYPE.route,
      routeTableName(t.key),
      buildRouteConfiguration(t),
      t.virtualHosts.flatMap((v) => v.routes.flatMap((r) => r.origins)),
    );
  }
  for (const list of set.values()) list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return set;
}

/** Clusters shared between proxies (the same ClusterIR object) are translated once. */
const translated = new WeakMap<ClusterIR, { cluster: XdsResource; endpoints?: XdsResource }>();

function translatedCluster(c: ClusterIR): { cluster: XdsResource; endpoints?: XdsResource } {
  let t = translated.get(c);
  if (!t) {
    const name = clusterName(c.key);
    t = { cluster: { typeUrl: TYPE.cluster, name, json: buildCluster(c), origins: dedupeOrigins(c.origins) } };
    if (c.discovery === 'eds') {
      t.endpoints = {
        typeUrl: TYPE.endpoint,
        name,
        json: buildLoadAssignment(name, c.endpoints),
        origins: dedupeOrigins(c.endpoints.map((e) => e.origin)),
      };
    }
    translated.set(c, t);
  }
  return t;
}

function dedupeOrigins(origins: Origin[]): Origin[] {
  const seen = new Map<string, Origin>();
  for (const o of origins) seen.set(`${o.file}:${o.line}:${o.column}`, o);
  return [...seen.values()].sort((a, b) =>
    a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column,
  );
}
