/**
 * Stage: model. What a workload's sidecar listens on (explicit mode) and which services it may reach, derived from
 * the Sidecar that applies to it, or from the defaults when none does. Also the checks on those: egress hosts that
 * name nothing, and two listeners on one address and port.
 */
import { Diagnostics, type Diagnostic, type Origin } from '../diag/diagnostic.js';
import { isHttpProtocol, objectRef, type Protocol, type Sidecar, type SidecarEgress } from '../policy/types.js';
import { serviceByHost, serviceHeadByHost, servicesInNamespace } from './index.js';
import { track } from './tracking.js';
import { type MeshModel, type Service, type Workload } from './mesh-model.js';
import { gatewayListeners, isGatewayWorkload } from './gateways.js';

/** Default outbound HTTP proxy port when no Sidecar egress names one. */
export const DEFAULT_OUTBOUND_PORT = 15001;

/**
 * Where a sidecar's egress listener binds when the Sidecar does not say: the workload's own address when that is a
 * loopback address (several workloads on one machine each get their own), else 127.0.0.1 (only the local app
 * may use its sidecar as a proxy).
 */
export function defaultOutboundBind(w: Workload): string {
  return isLoopback(w.address) ? w.address : '127.0.0.1';
}

export interface InboundPlan {
  address: string;
  port: number;
  protocol: Protocol;
  /** Where the application listens. */
  app: { address: string; port: number };
  origin: Origin;
}

export interface OutboundPlan {
  bind: string;
  port: number;
  protocol: Protocol;
  /** Services reachable through this listener, sorted by host. */
  services: Service[];
  origin: Origin;
}

export function hostPatternMatches(
  p: { namespace: string; host: string },
  svc: Service,
  sidecarNamespace: string,
): boolean {
  const ns = p.namespace === '.' ? sidecarNamespace : p.namespace;
  if (ns === '~') return false;
  if (ns !== '*' && ns !== svc.namespace) return false;
  if (p.host === '*') return true;
  if (p.host.startsWith('*.')) return svc.host.endsWith(p.host.slice(1));
  return p.host === svc.host;
}

/** Services one host pattern names: a direct lookup for a specific host, a scan only for wildcards. */
function matching(model: MeshModel, h: { namespace: string; host: string }, sidecarNs: string): Service[] {
  const ns = h.namespace === '.' ? sidecarNs : h.namespace;
  if (ns === '~') return [];
  if (h.host !== '*' && !h.host.startsWith('*.')) {
    const s = serviceByHost(model, h.host);
    return s && (ns === '*' || s.namespace === ns) ? [s] : [];
  }
  if (ns === '*') track('svcs:*');
  const pool = ns === '*' ? model.services : servicesInNamespace(model, ns);
  return pool.filter((s) => hostPatternMatches(h, s, sidecarNs));
}

function scopeOf(model: MeshModel, egress: readonly SidecarEgress[], ns: string): Service[] {
  const set = new Set<Service>();
  for (const e of egress) for (const h of e.hosts) for (const s of matching(model, h, ns)) set.add(s);
  // Keep the model's order (sorted by host) so output stays deterministic.
  return set.size === model.services.length ? model.services : model.services.filter((s) => set.has(s));
}

function egressScope(egress: SidecarEgress, model: MeshModel, ns: string): Service[] {
  return scopeOf(model, [egress], ns);
}

/** Every service the workload's sidecar may reach (union of its egress scopes; all services by default). */
export function servicesInScope(w: Workload, model: MeshModel): Service[] {
  const egress = w.sidecar?.spec.egress ?? [];
  if (egress.length === 0) {
    track('svcs:*');
    return model.services;
  }
  return scopeOf(model, egress, sidecarNamespace(w));
}

function sidecarNamespace(w: Workload): string {
  // A Sidecar's `.` means the Sidecar's own namespace; the ref is `Sidecar ns/name`.
  return w.sidecar ? w.sidecar.ref.slice('Sidecar '.length).split('/')[0] : w.namespace;
}

export function inboundPlans(w: Workload, model: MeshModel): InboundPlan[] {
  const ingress = w.sidecar?.spec.ingress ?? [];
  if (ingress.length > 0) {
    return ingress.map((i) => ({
      address: i.bind ?? w.address,
      port: i.port.number,
      protocol: i.port.protocol,
      app: i.defaultEndpoint,
      origin: i.at,
    }));
  }
  // Default: one inbound listener per port of each service that selects the workload, forwarding to the
  // application on loopback at the same port.
  const plans = new Map<number, InboundPlan>();
  // w.services lists exactly the services whose endpoints include w, with w's own ports (see buildModel).
  for (const host of w.services) {
    const svc = serviceHeadByHost(model, host);
    if (!svc) continue;
    for (const port of svc.ports) {
      const n = w.ports[port.name] ?? port.targetPort ?? port.number;
      if (!plans.has(n))
        plans.set(n, {
          address: w.address,
          port: n,
          protocol: port.protocol,
          app: { address: '127.0.0.1', port: n },
          origin: svc.origin,
        });
    }
  }
  return [...plans.values()].sort((a, b) => a.port - b.port);
}

/**
 * The one destination of a TCP egress listener: plain TCP carries no host to route by, so the listener's egress
 * hosts must name exactly one service with a TCP port (the one numbered like the listener, else its only one).
 */
export function tcpEgressTarget(plan: OutboundPlan): { svc: Service; port: number } | { error: string } {
  const tcp = plan.services.filter((s) => s.ports.some((sp) => !isHttpProtocol(sp.protocol)));
  if (tcp.length !== 1) {
    const which =
      tcp.length === 0
        ? 'no service with a TCP port'
        : `${tcp.length} services with TCP ports (${tcp.map((s) => s.host).join(', ')})`;
    return { error: `a TCP egress listener forwards to one service; its hosts name ${which}` };
  }
  const svc = tcp[0];
  const ports = svc.ports.filter((sp) => !isHttpProtocol(sp.protocol));
  const port = ports.find((sp) => sp.number === plan.port) ?? (ports.length === 1 ? ports[0] : undefined);
  if (!port) return { error: `${svc.host} has several TCP ports and none is ${plan.port}: use that port number` };
  return { svc, port: port.number };
}

export function outboundPlans(w: Workload, model: MeshModel): OutboundPlan[] {
  const ns = sidecarNamespace(w);
  return outboundListeners(w, model).map(({ egress, ...l }) => ({
    ...l,
    services: egress ? egressScope(egress, model, ns) : servicesInScope(w, model),
  }));
}

/**
 * Where a TCP egress listener without `bind` listens: on its service's ServiceEntry address when it has one (the
 * address the application dials, as it would in a captured mesh), else where the workload's egress listeners do.
 */
function tcpBind(w: Workload, model: MeshModel, e: SidecarEgress): string {
  const services = egressScope(e, model, sidecarNamespace(w));
  const target = tcpEgressTarget({
    bind: '',
    port: e.port!.number,
    protocol: e.port!.protocol,
    origin: e.at,
    services,
  });
  return ('svc' in target ? target.svc.addresses[0] : undefined) ?? defaultOutboundBind(w);
}

/** The egress listeners of a workload, with where each binds. */
function outboundListeners(
  w: Workload,
  model: MeshModel,
): (Omit<OutboundPlan, 'services'> & { egress?: SidecarEgress })[] {
  const withPort = (w.sidecar?.spec.egress ?? []).filter((e) => e.port);
  if (withPort.length > 0) {
    return withPort.map((e) => ({
      bind: e.bind ?? (isHttpProtocol(e.port!.protocol) ? defaultOutboundBind(w) : tcpBind(w, model, e)),
      port: e.port!.number,
      protocol: e.port!.protocol,
      origin: e.at,
      egress: e,
    }));
  }
  return [
    {
      bind: defaultOutboundBind(w),
      port: DEFAULT_OUTBOUND_PORT,
      protocol: 'HTTP',
      origin: w.sidecar?.origin ?? w.origin,
    },
  ];
}

/** Egress hosts that name a specific service must resolve; namespaces must exist. */
export function checkSidecarHosts(sc: Sidecar, model: MeshModel, diags: Diagnostics): void {
  // What it reports depends on the Sidecar, the services and the namespaces alone; unchanged ones (the same
  // objects, see buildModel) give the same reports, so a revision checks only the Sidecars it changed.
  const namespaces = model.namespaces.join();
  const services = serviceShapes.get(model.services) ?? model.services;
  const seen = hostChecks.get(sc);
  if (seen && seen.services === services && seen.namespaces === namespaces) return diags.addAll(seen.reports);
  const own = new Diagnostics();
  checkHosts(sc, model, own);
  hostChecks.set(sc, { services, namespaces, reports: own.items });
  diags.addAll(own.items);
}

const hostChecks = new WeakMap<Sidecar, { services: object; namespaces: string; reports: Diagnostic[] }>();

/**
 * A token per services list for what the host checks read of it: each service's host, namespace and ports, not its
 * endpoints. An endpoint change gives a new list with the previous list's token, so no Sidecar is checked again.
 * Keyed by list identity; the token is a pure function of the lists' contents, so models of several compiles may
 * share it.
 */
const serviceShapes = new WeakMap<readonly Service[], object>();

/** Gives `now` the token of `before` when their services differ at most in endpoints. */
export function noteServiceShapes(now: readonly Service[], before: readonly Service[]): void {
  if (now === before || serviceShapes.has(now)) return;
  const sameShape = (a: Service, b: Service) =>
    a === b ||
    (a.host === b.host && a.namespace === b.namespace && JSON.stringify(a.ports) === JSON.stringify(b.ports));
  if (now.length === before.length && now.every((s, i) => sameShape(s, before[i]))) {
    serviceShapes.set(now, serviceShapes.get(before) ?? before);
  }
}

function checkHosts(sc: Sidecar, model: MeshModel, diags: Diagnostics): void {
  const object = objectRef('Sidecar', sc.meta);
  sc.spec.egress.forEach((e, ei) => {
    if (e.port && !isHttpProtocol(e.port.protocol)) {
      const plan = {
        bind: '',
        port: e.port.number,
        protocol: e.port.protocol,
        origin: e.at,
        services: egressScope(e, model, sc.meta.namespace),
      };
      const target = tcpEgressTarget(plan);
      if ('error' in target)
        diags.report('CH0403', `spec.egress[${ei}]: ${target.error}`, {
          location: e.at,
          path: `spec.egress[${ei}]`,
          object,
        });
    }
    e.hosts.forEach((h, hi) => {
      const path = `spec.egress[${ei}].hosts[${hi}]`;
      const ns = h.namespace === '.' ? sc.meta.namespace : h.namespace;
      if (ns !== '*' && ns !== '~' && !model.namespaces.includes(ns)) {
        diags.report('CH0302', `${path}: namespace "${ns}" has no services or workloads`, {
          location: h.at,
          path,
          object,
          severity: h.host === '*' ? 'warning' : 'error',
        });
        return;
      }
      const specific = h.host !== '*' && !h.host.startsWith('*.');
      if (specific && matching(model, h, sc.meta.namespace).length === 0) {
        diags.report('CH0301', `${path}: no ServiceEntry declares host ${h.host} in namespace ${ns}`, {
          location: h.at,
          path,
          object,
        });
      }
    });
  });
}

/**
 * Two listeners on one address:port cannot both bind. Within a workload that is always a conflict. Across workloads
 * it is one when they must share a host: the same non-loopback address, or workloads whose mesh addresses are
 * loopback (reachable only from one machine, so they all run on it: the local development and test setup).
 */
export function checkListenerConflicts(model: MeshModel, diags: Diagnostics): void {
  const shared = new Map<string, { workload: string; origin: Origin }>();
  for (const w of model.workloads) {
    const own = new Set<string>();
    const colocated = isLoopback(w.address);
    // A gateway workload runs a gateway Envoy: its servers' listeners instead of a sidecar's.
    const claims = isGatewayWorkload(model, w)
      ? gatewayListeners(model, w).map((p) => ({ key: `${p.address}:${p.port}`, origin: p.servers[0].server.at }))
      : [
          ...inboundPlans(w, model).map((p) => ({ key: `${p.address}:${p.port}`, origin: p.origin })),
          ...outboundListeners(w, model).map((p) => ({ key: `${p.bind}:${p.port}`, origin: p.origin })),
        ];
    for (const c of claims) {
      if (own.has(c.key)) {
        diags.report('CH0404', `workload ${w.id} has two listeners on ${c.key}`, {
          location: c.origin,
          object: `WorkloadEntry ${w.id}`,
        });
        continue;
      }
      own.add(c.key);
      if (!colocated && isLoopback(c.key.slice(0, c.key.lastIndexOf(':')))) continue;
      const prev = shared.get(c.key);
      if (prev) {
        diags.report('CH0404', `workload ${w.id} listens on ${c.key}, which workload ${prev.workload} already uses`, {
          location: c.origin,
          object: `WorkloadEntry ${w.id}`,
          related: [{ message: `listener of ${prev.workload}`, location: prev.origin }],
        });
        continue;
      }
      shared.set(c.key, { workload: w.id, origin: c.origin });
    }
  }
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}

/** Past this many services, a workload without egress scoping gets advice to add a Sidecar. */
export const SCOPE_ADVICE_THRESHOLD = 50;

/** Without a Sidecar a proxy receives every service; fine for small meshes, costly for large ones. */
export function adviseSidecars(model: MeshModel, diags: Diagnostics): void {
  if (model.services.length <= SCOPE_ADVICE_THRESHOLD) return;
  const unscoped = model.workloads.filter((w) => (w.sidecar?.spec.egress ?? []).length === 0);
  if (unscoped.length === 0) return;
  diags.report(
    'CH0501',
    `${unscoped.length} workload(s) (${unscoped
      .slice(0, 3)
      .map((w) => w.id)
      .join(
        ', ',
      )}${unscoped.length > 3 ? ', ...' : ''}) receive all ${model.services.length} services; add a Sidecar with egress hosts to scope them`,
    { location: unscoped[0].origin },
  );
}
