/**
 * Stage: ir. Where tcp and tls routes send bytes: weighted outbound clusters (a weight of 0 is left out, Envoy wants
 * at least 1), and the SNI-chosen chains a sidecar's TLS egress listener gets from its host's tls routes (Istio's
 * buildSidecarOutboundTLSFilterChainOpts: the matches that hold for this caller and port, in order; a set of SNI
 * names already taken by an earlier match can never be reached and is left out). Envoy-free.
 */
import type { Origin } from '../diag/diagnostic.js';
import { matchApplies, MESH_GATEWAY } from '../model/gateways.js';
import { serviceByHost } from '../model/index.js';
import { labelsMatch, type MeshModel, type Service, type Workload } from '../model/mesh-model.js';
import { virtualServiceFor } from '../model/routing.js';
import type { Destination } from '../policy/traffic-types.js';
import { ensureOutboundCluster } from './clusters.js';
import type { ClusterIR, SniForwardIR, TcpForwardIR } from './types.js';

/** The clusters of a route's destinations; a destination without a port takes its only one, else `fallbackPort`. */
export function forwardTo(
  model: MeshModel,
  destinations: Destination[],
  clusters: Map<string, ClusterIR>,
  fallbackPort: (svc: Service) => number,
): Omit<TcpForwardIR, 'route'> {
  const weighted = destinations
    .filter((d) => d.weight > 0)
    .map((d) => {
      const svc = serviceByHost(model, d.host)!;
      const port = d.port ?? (svc.ports.length === 1 ? svc.ports[0].number : fallbackPort(svc));
      return { cluster: ensureOutboundCluster(clusters, model, svc, port, d.subset), weight: d.weight };
    });
  return { cluster: weighted[0].cluster, ...(weighted.length > 1 ? { weighted } : {}) };
}

/** The SNI chains of a TLS egress listener for `target`, from the tls routes of its VirtualService (none: none). */
export function sidecarTlsChains(
  model: MeshModel,
  w: Workload,
  target: { svc: Service; port: number },
  clusters: Map<string, ClusterIR>,
): { chains: SniForwardIR[]; origins: Origin[] } {
  const vs = virtualServiceFor(model, target.svc.host);
  const chains: SniForwardIR[] = [];
  const origins: Origin[] = [];
  if (!vs) return { chains, origins };
  const taken = new Set<string>();
  vs.spec.tls.forEach((r, i) => {
    for (const m of r.match) {
      const holds =
        matchApplies(m, vs.namespace, MESH_GATEWAY) &&
        (m.port === undefined || m.port === target.port) &&
        labelsMatch(m.sourceLabels ?? {}, w.labels) &&
        (m.sourceNamespace === undefined || m.sourceNamespace === w.namespace);
      const serverNames = [...new Set(m.sniHosts.map((h) => h.value.toLowerCase()))].filter((n) => !taken.has(n));
      if (!holds || serverNames.length === 0) continue;
      for (const n of serverNames) taken.add(n);
      const route = `${vs.namespace}/${vs.name}/tls[${i}]`;
      chains.push({
        serverNames: serverNames.sort(),
        ...forwardTo(model, r.route, clusters, () => target.port),
        route,
      });
      origins.push(m.at);
    }
  });
  return { chains, origins };
}
