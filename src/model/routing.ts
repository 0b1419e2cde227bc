/**
 * Stage: model. VirtualServices, DestinationRules and RateLimitPolicies resolved against the service registry:
 * one VirtualService and one DestinationRule per host (they are not merged: two for one host is an error), every
 * destination, subset and port must exist, and a route after a catch-all can never match.
 */
import type { Diagnostics, Origin } from '../diag/diagnostic.js';
import type {
  GatewayName,
  TcpMatch,
  TlsMatch,
  Destination,
  DestinationRuleSpec,
  HttpMatch,
  HttpRoute,
  RateLimitPolicySpec,
  Subset,
  TrafficPolicy,
  VirtualServiceSpec,
} from '../policy/traffic-types.js';
import {
  isHttpProtocol,
  objectRef,
  type DestinationRule,
  type PolicyObject,
  type RateLimitPolicy,
  type VirtualService,
} from '../policy/types.js';
import { labelsMatch, type MeshModel, type Service, type Workload } from './mesh-model.js';
import { scoped, type Scoped } from './security.js';
import { serviceByHost } from './index.js';
import { track } from './tracking.js';
import { boundTo, gatewayRef, MESH_GATEWAY } from './gateways.js';
import { groupSelected } from './groups.js';

export interface Routing {
  /** By host: the VirtualServices of the sidecars (bound to `mesh`); gateways' are in MeshModel.gateways. */
  virtualServices: Map<string, Scoped<VirtualServiceSpec>>;
  destinationRules: Map<string, Scoped<DestinationRuleSpec>>;
  rateLimits: Scoped<RateLimitPolicySpec>[];
}

export function collectRouting(objects: readonly PolicyObject[], diags: Diagnostics): Routing {
  const virtualServices = new Map<string, Scoped<VirtualServiceSpec>>();
  for (const vs of objects.filter((o): o is VirtualService => o.kind === 'VirtualService')) {
    // A VirtualService bound only to gateways never reaches a sidecar's route table.
    if (!boundTo(scoped(vs), MESH_GATEWAY)) continue;
    for (const h of vs.spec.hosts) {
      const prev = virtualServices.get(h.value);
      if (prev) {
        diags.report(
          'CH0408',
          `host ${h.value} already has a VirtualService (${objectRef('VirtualService', prev)}); put all its routes in one`,
          {
            location: h.at,
            object: objectRef('VirtualService', vs.meta),
            related: [{ message: 'the other VirtualService', location: prev.origin }],
          },
        );
        continue;
      }
      virtualServices.set(h.value, scoped(vs));
    }
  }
  const destinationRules = new Map<string, Scoped<DestinationRuleSpec>>();
  for (const dr of objects.filter((o): o is DestinationRule => o.kind === 'DestinationRule')) {
    const prev = destinationRules.get(dr.spec.host.value);
    if (prev) {
      diags.report(
        'CH0408',
        `host ${dr.spec.host.value} already has a DestinationRule (${objectRef('DestinationRule', prev)})`,
        {
          location: dr.spec.host.at,
          object: objectRef('DestinationRule', dr.meta),
          related: [{ message: 'the other DestinationRule', location: prev.origin }],
        },
      );
      continue;
    }
    destinationRules.set(dr.spec.host.value, scoped(dr));
  }
  const rateLimits = objects.filter((o): o is RateLimitPolicy => o.kind === 'RateLimitPolicy').map(scoped);
  return { virtualServices, destinationRules, rateLimits };
}

/** A route whose matches catch every request (no match, or only `uri: prefix /`). */
export function catchesAll(route: HttpRoute): boolean {
  const all = (m: HttpMatch) =>
    (!m.uri || ('prefix' in m.uri && m.uri.prefix === '/')) &&
    !m.method &&
    !m.authority &&
    m.headers.length === 0 &&
    m.queryParams.length === 0 &&
    m.port === undefined &&
    !m.sourceLabels &&
    !m.gateways;
  return route.match.length === 0 || route.match.some(all);
}

export function virtualServiceFor(model: MeshModel, host: string): Scoped<VirtualServiceSpec> | undefined {
  track(`vs:${host}`);
  return model.routing.virtualServices.get(host);
}

export function destinationRuleFor(model: MeshModel, host: string): Scoped<DestinationRuleSpec> | undefined {
  track(`dr:${host}`);
  return model.routing.destinationRules.get(host);
}

export function subsetOf(model: MeshModel, host: string, name: string): Subset | undefined {
  return destinationRuleFor(model, host)?.spec.subsets.find((s) => s.name === name);
}

/** The traffic policy for a destination: subset over port-level over the rule's own, field by field. */
export function trafficPolicyFor(
  model: MeshModel,
  host: string,
  port: number,
  subset?: string,
): Omit<TrafficPolicy, 'portLevel'> | undefined {
  const dr = destinationRuleFor(model, host)?.spec;
  if (!dr) return undefined;
  const layers = [dr.trafficPolicy, dr.trafficPolicy?.portLevel.find((p) => p.port === port)?.policy];
  const s = subset ? dr.subsets.find((x) => x.name === subset)?.trafficPolicy : undefined;
  layers.push(s, s?.portLevel.find((p) => p.port === port)?.policy);
  const out: Omit<TrafficPolicy, 'portLevel'> = {};
  for (const l of layers) {
    if (!l) continue;
    if (l.loadBalancer) out.loadBalancer = l.loadBalancer;
    if (l.connectionPool) out.connectionPool = { ...out.connectionPool, ...l.connectionPool };
    if (l.outlierDetection) out.outlierDetection = { ...out.outlierDetection, ...l.outlierDetection };
    if (l.tls) out.tls = l.tls;
  }
  return out;
}

export function rateLimitsFor(model: MeshModel, w: Workload): Scoped<RateLimitPolicySpec>[] {
  track(`rl:${w.id}`);
  return model.routing.rateLimits.filter(
    (p) => p.namespace === w.namespace && (!p.spec.selector || labelsMatch(p.spec.selector, w.labels)),
  );
}

/**
 * Istio reads a short name (`reviews`) as `reviews.<namespace>.svc.cluster.local`, Kubernetes' DNS name; Chancery
 * has no Kubernetes and matches host names as written. When the Kubernetes form is what is declared, say so.
 */
function shortName(model: MeshModel, host: string, ns: string): string {
  if (host.includes('.') || host.includes('*')) return '';
  const k8s = model.services.find(
    (s) => s.host === `${host}.${ns}.svc.cluster.local` || s.host === `${host}.${ns}.svc`,
  );
  return k8s ? ` (Istio would read the short name as ${k8s.host}, which is declared: write that name here)` : '';
}

/** A route's destination must be a declared host, port and subset. */
function checkDestination(model: MeshModel, d: Destination, object: string, ns: string, diags: Diagnostics): void {
  const svc = serviceByHost(model, d.host);
  if (!svc) {
    diags.report(
      'CH0301',
      `destination host ${d.host} is not declared by any ServiceEntry${shortName(model, d.host, ns)}`,
      {
        location: d.at,
        object,
      },
    );
    return;
  }
  if (d.port !== undefined && !svc.ports.some((p) => p.number === d.port)) {
    const ports = svc.ports.map((p) => p.number).join(', ');
    diags.report('CH0304', `${d.host} has no port ${d.port} (ports: ${ports})`, { location: d.at, object });
  }
  if (d.port === undefined && svc.ports.length > 1) {
    diags.report('CH0304', `${d.host} has several ports; say which with destination.port`, { location: d.at, object });
  }
  if (d.subset && !subsetOf(model, d.host, d.subset)) {
    diags.report('CH0306', `no DestinationRule for ${d.host} defines subset "${d.subset}"`, { location: d.at, object });
  }
}

export function checkRouting(model: MeshModel, diags: Diagnostics): void {
  const service = (host: string): Service | undefined => serviceByHost(model, host);
  for (const [host, vs] of model.routing.virtualServices) {
    const hostAt = vs.spec.hosts.find((h) => h.value === host)!.at;
    // Bound to gateways too, a host may be one only they serve (e.g. shop.example.com); sidecars route services.
    const gatewayHost = vs.spec.gateways.some((g) => g.value !== MESH_GATEWAY);
    if (service(host) || gatewayHost) continue;
    const object = objectRef('VirtualService', vs);
    const message = `spec.hosts: no ServiceEntry declares host ${host}${shortName(model, host, vs.namespace)}`;
    diags.report('CH0301', message, { location: hostAt, object });
  }
  // Each VirtualService once, wherever it is bound: a gateway's hosts need not be services, its destinations must.
  const all = new Set([...model.routing.virtualServices.values(), ...[...model.gateways.bound.values()].flat()]);
  for (const vs of all) checkRoutes(model, vs, service, diags);
  for (const [host, dr] of model.routing.destinationRules) {
    const object = objectRef('DestinationRule', dr);
    const svc = service(host);
    if (!svc) {
      const message = `spec.host: no ServiceEntry declares host ${host}${shortName(model, host, dr.namespace)}`;
      diags.report('CH0301', message, { location: dr.spec.host.at, object });
      continue;
    }
    for (const s of dr.spec.subsets) {
      if (!svc.endpoints.some((e) => labelsMatch(s.labels, e.labels))) {
        diags.report('CH0303', `subset "${s.name}" selects no endpoint of ${host}`, {
          location: s.at,
          object,
          severity: 'warning',
        });
      }
    }
  }
  for (const p of model.routing.rateLimits) {
    const object = objectRef('RateLimitPolicy', p);
    const sel = p.spec.selector;
    const none = sel && !model.workloads.some((w) => w.namespace === p.namespace && labelsMatch(sel, w.labels));
    if (none && !groupSelected(model.groups, p.namespace, sel)) {
      diags.report('CH0303', `selector matches no WorkloadEntry in namespace ${p.namespace}`, {
        location: p.origin,
        object,
      });
    }
    const unmatched = p.spec.limits.filter((l) => !l.match);
    if (unmatched.length > 1)
      diags.report('CH0204', 'only one limit may omit match (it applies to all other requests)', {
        location: unmatched[1].at,
        object,
      });
  }
}

function checkRoutes(
  model: MeshModel,
  vs: Scoped<VirtualServiceSpec>,
  service: (host: string) => Service | undefined,
  diags: Diagnostics,
): void {
  const object = objectRef('VirtualService', vs);
  const bound = new Set(vs.spec.gateways.map((g) => gatewayRef(g.value, vs.namespace)));
  let caughtAt: string | undefined;
  vs.spec.http.forEach((r, i) => {
    if (caughtAt)
      diags.report('CH0407', `spec.http[${i}] can never match: ${caughtAt} catches every request`, {
        location: r.at,
        object,
        path: `spec.http[${i}]`,
      });
    else if (catchesAll(r)) caughtAt = `spec.http[${i}]`;
    for (const m of r.match) checkMatchGateways(m.gateways ?? [], bound, vs, diags);
    for (const d of [...r.route, ...(r.mirror ? [{ ...r.mirror, weight: 0 }] : [])])
      checkDestination(model, d, object, vs.namespace, diags);
  });
  const l4: [string, { match: { gateways?: GatewayName[]; at: Origin }[]; route: Destination[] }[]][] = [
    ['tcp', vs.spec.tcp],
    ['tls', vs.spec.tls],
  ];
  for (const [kind, routes] of l4) {
    for (const r of routes) {
      for (const m of r.match) checkMatchGateways(m.gateways ?? [], bound, vs, diags);
      for (const d of r.route) checkL4Destination(model, d, kind, object, vs.namespace, diags);
    }
  }
  for (const m of [...vs.spec.tcp, ...vs.spec.tls].flatMap((r): (TcpMatch | TlsMatch)[] => r.match)) {
    // Istio ignores who the caller is on gateways (l4SingleMatch); an ignored line of policy is an error here.
    const atGateway = [...(m.gateways ? m.gateways.map((g) => gatewayRef(g.value, vs.namespace)) : bound)].some(
      (g) => g !== MESH_GATEWAY,
    );
    if (atGateway && (m.sourceLabels || m.sourceNamespace)) {
      const message =
        'sourceLabels and sourceNamespace select callers at sidecars; gateways ignore them (Istio ' +
        'too): restrict this match to the sidecars with gateways: [mesh], or remove them';
      diags.report('CH0205', message, { location: m.at, object });
    }
  }
}

/** Istio applies a VirtualService only where its own gateways are; a match elsewhere is never consulted. */
function checkMatchGateways(
  gateways: GatewayName[],
  bound: Set<string>,
  vs: Scoped<VirtualServiceSpec>,
  diags: Diagnostics,
): void {
  for (const g of gateways) {
    const ref = gatewayRef(g.value, vs.namespace);
    if (bound.has(ref)) continue;
    const message = `gateways: ${ref} is not in this VirtualService's spec.gateways: the match never applies there`;
    diags.report('CH0407', message, { location: g.at, object: objectRef('VirtualService', vs) });
  }
}

/** A tcp or tls route's destination: a declared host and port, and not one that speaks HTTP. */
function checkL4Destination(
  model: MeshModel,
  d: Destination,
  kind: string,
  object: string,
  ns: string,
  diags: Diagnostics,
) {
  checkDestination(model, d, object, ns, diags);
  const svc = serviceByHost(model, d.host);
  const sp = svc?.ports.find((p) => p.number === d.port) ?? (svc?.ports.length === 1 ? svc.ports[0] : undefined);
  if (sp && isHttpProtocol(sp.protocol)) {
    const want = kind === 'tls' ? 'TLS or HTTPS' : 'TCP';
    const message = `${d.host} port ${sp.number} is ${sp.protocol}, not ${want}: use an http route`;
    diags.report('CH0304', message, { location: d.at, object });
  }
}
