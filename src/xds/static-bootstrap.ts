/**
 * Stage: xds. Turns one proxy's dynamic resources into a static Envoy bootstrap, so `envoy --mode validate` can check
 * them with Envoy's own full validation (`chancery render --envoy`, and the golden tests): RDS references become
 * inline route_config, EDS clusters become STATIC clusters carrying their ClusterLoadAssignment, SDS references
 * become references to static secrets.
 */
import type { ResourceSet } from './translate.js';
import { TYPE } from './type-urls.js';

export function staticBootstrap(set: ResourceSet, secrets: object[] = [], adminPort = 0): object {
  const json = (t: string) => (set.get(t as never) ?? []).map((r) => structuredClone(r.json) as any);
  const routes = new Map(json(TYPE.route).map((r) => [r.name, r]));
  const cla = new Map(json(TYPE.endpoint).map((e) => [e.cluster_name, e]));
  const listeners = json(TYPE.listener).map((l) => {
    for (const fc of l.filter_chains ?? []) {
      for (const f of fc.filters ?? []) {
        const hcm = f.typed_config;
        if (hcm?.rds) {
          const rc = routes.get(hcm.rds.route_config_name);
          if (!rc) throw new Error(`listener ${l.name} references missing route ${hcm.rds.route_config_name}`);
          delete hcm.rds;
          hcm.route_config = rc;
        }
      }
    }
    return l;
  });
  const clusters = json(TYPE.cluster).map((c) => {
    if (c.type !== 'EDS') return c;
    const { eds_cluster_config: _eds, ...rest } = c;
    return { ...rest, type: 'STATIC', load_assignment: cla.get(c.name) ?? { cluster_name: c.name } };
  });
  // Secrets come over SDS at run time; statically they are static_resources.secrets referenced by name.
  stripSdsConfig(listeners);
  stripSdsConfig(clusters);
  return {
    node: { id: 'validate', cluster: 'validate' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } },
    static_resources: { listeners, clusters, secrets: [...json(TYPE.secret), ...secrets] },
  };
}

function stripSdsConfig(x: any): void {
  if (Array.isArray(x)) return x.forEach(stripSdsConfig);
  if (!x || typeof x !== 'object') return;
  for (const [k, v] of Object.entries(x)) {
    if ((k === 'tls_certificate_sds_secret_configs' || k === 'validation_context_sds_secret_config') && v) {
      for (const c of Array.isArray(v) ? v : [v]) delete (c as any).sds_config;
    } else stripSdsConfig(v);
  }
}
