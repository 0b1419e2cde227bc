/**
 * Stage: model. Gateways, Istio's way: a Gateway's selector picks gateway workloads in ANY namespace (Istio's
 * default; PILOT_SCOPE_GATEWAY_TO_NAMESPACE is off), a selected workload runs a gateway Envoy instead of a sidecar,
 * and a VirtualService applies to the gateways its `gateways` names (`name` or `namespace/name`; `mesh` is the
 * sidecars). A server serves the VirtualService hosts that intersect its own `hosts` (Istio's host.Names
 * Intersection: the more specific name of each overlapping pair), for VirtualServices of the namespaces it admits.
 *
 * What a gateway workload listens on and which virtual hosts each listener serves are computed here once; the IR
 * (ir/gateway.ts) translates them and the checks below find what Envoy would refuse (two TLS servers for one name,
 * TLS and plaintext on one port, two VirtualServices for one host of one route table).
 */
import type { Diagnostics, Origin } from '../diag/diagnostic.js';
import type { GatewayServer, GatewaySpec } from '../policy/gateway-types.js';
import type { GatewayName, VirtualServiceSpec } from '../policy/traffic-types.js';
import { objectRef, type Gateway, type PolicyObject, type VirtualService } from '../policy/types.js';
import { hostSubsetOf } from '../policy/kinds/common.js';
import { labelsMatch, type MeshModel, type Workload } from './mesh-model.js';
import { scoped, type Scoped } from './security.js';
import { track } from './tracking.js';
import { l4RoutedBy } from './gateway-l4.js';

/** The reserved gateway name of "every sidecar". */
export const MESH_GATEWAY = 'mesh';

export interface GatewayModel {
  /** Sorted by namespace and name. */
  list: Scoped<GatewaySpec>[];
  /** VirtualServices bound to each gateway (`namespace/name`), sorted by namespace and name. */
  bound: Map<string, Scoped<VirtualServiceSpec>[]>;
}

export { hostSubsetOf };

/** `mesh`, or the `namespace/name` a VirtualService in `namespace` means. */
export function gatewayRef(name: string, namespace: string): string {
  return name === MESH_GATEWAY || name.includes('/') ? name : `${namespace}/${name}`;
}

export function refOf(g: { namespace: string; name: string }): string {
  return `${g.namespace}/${g.name}`;
}

/** Whether a VirtualService applies where `ref` (`mesh` or a gateway) is. */
export function boundTo(vs: Scoped<VirtualServiceSpec>, ref: string): boolean {
  return vs.spec.gateways.some((g) => gatewayRef(g.value, vs.namespace) === ref);
}

/** Whether a match applies at `ref`: its own `gateways` override the VirtualService's (Istio's rule). */
export function matchApplies(m: { gateways?: GatewayName[] }, vsNamespace: string, ref: string): boolean {
  return !m.gateways || m.gateways.some((g) => gatewayRef(g.value, vsNamespace) === ref);
}

export function collectGateways(objects: readonly PolicyObject[], diags: Diagnostics): GatewayModel {
  const list = objects.filter((o): o is Gateway => o.kind === 'Gateway').map(scoped);
  const known = new Set(list.map(refOf));
  const bound = new Map<string, Scoped<VirtualServiceSpec>[]>();
  for (const vs of objects.filter((o): o is VirtualService => o.kind === 'VirtualService')) {
    const routes = [...vs.spec.http, ...vs.spec.tcp, ...vs.spec.tls];
    const names = [...vs.spec.gateways, ...routes.flatMap((r) => r.match.flatMap((m) => m.gateways ?? []))];
    for (const g of names) {
      const ref = gatewayRef(g.value, vs.meta.namespace);
      if (ref !== MESH_GATEWAY && !known.has(ref)) {
        const object = objectRef('VirtualService', vs.meta);
        diags.report('CH0307', `gateways: no Gateway ${ref}`, { location: g.at, object });
      }
    }
    for (const g of vs.spec.gateways) {
      const ref = gatewayRef(g.value, vs.meta.namespace);
      if (ref === MESH_GATEWAY || !known.has(ref)) continue;
      const l = bound.get(ref) ?? [];
      if (!l.includes(scoped(vs))) l.push(scoped(vs));
      bound.set(ref, l);
    }
  }
  return { list, bound };
}

const selections = new WeakMap<MeshModel, Map<string, Scoped<GatewaySpec>[]>>();

/** The Gateways that select a workload (any namespace), sorted; none for a sidecar. */
export function gatewaysOf(model: MeshModel, w: Workload): Scoped<GatewaySpec>[] {
  track(`gw:${w.id}`);
  let byWorkload = selections.get(model);
  if (!byWorkload) {
    byWorkload = new Map();
    for (const g of model.gateways.list) {
      for (const x of model.workloads) {
        if (labelsMatch(g.spec.selector, x.labels)) byWorkload.set(x.id, [...(byWorkload.get(x.id) ?? []), g]);
      }
    }
    selections.set(model, byWorkload);
  }
  return byWorkload.get(w.id) ?? [];
}

export function isGatewayWorkload(model: MeshModel, w: Workload): boolean {
  return gatewaysOf(model, w).length > 0;
}

/** VirtualServices bound to a gateway. */
export function boundVirtualServices(model: MeshModel, ref: string): Scoped<VirtualServiceSpec>[] {
  track(`gwvs:${ref}`);
  return model.gateways.bound.get(ref) ?? [];
}

/** One server of one Gateway, as a gateway workload runs it. */
export interface ServerRef {
  gateway: Scoped<GatewaySpec>;
  index: number;
  server: GatewayServer;
}

/** `namespace/name/servers[i]`: how diagnostics, explain and route table names refer to a server. */
export function serverName(s: ServerRef): string {
  return `${refOf(s.gateway)}/servers[${s.index}]`;
}

export interface GatewayListenerPlan {
  address: string;
  port: number;
  /** All servers on one address:port speak TLS (terminated or passed through), or none does (checked). */
  tls: boolean;
  servers: ServerRef[];
}

/** A gateway workload's listeners: one per address (the server's bind, else the workload's) and port. */
export function gatewayListeners(model: MeshModel, w: Workload): GatewayListenerPlan[] {
  const plans = new Map<string, GatewayListenerPlan>();
  for (const gateway of gatewaysOf(model, w)) {
    gateway.spec.servers.forEach((server, index) => {
      const address = server.bind ?? w.address;
      const key = `${address}:${server.port.number}`;
      const plan = plans.get(key) ?? { address, port: server.port.number, tls: speaksTls(server), servers: [] };
      plan.servers.push({ gateway, index, server });
      plans.set(key, plan);
    });
  }
  return [...plans.values()].sort((a, b) => a.port - b.port || (a.address < b.address ? -1 : 1));
}

/** Whether a server's clients speak TLS to it: it terminates it, or passes it through. */
export function speaksTls(server: GatewayServer): boolean {
  return server.tls !== undefined || server.passthrough === true;
}

/** TCP and TLS servers, and PASSTHROUGH ones, carry bytes (tcp and tls routes), not HTTP requests (http routes). */
export function isL4Server(server: GatewayServer): boolean {
  return server.port.protocol === 'TCP' || server.port.protocol === 'TLS' || server.passthrough === true;
}

/** The server's hosts a VirtualService's namespace may use (Istio's `namespace/host`; `*` any namespace). */
export function admittedHosts(server: GatewayServer, vsNamespace: string): string[] {
  return server.hosts.filter((h) => h.namespace === '*' || h.namespace === vsNamespace).map((h) => h.host);
}

/** The names both sets share: of each overlapping pair, the more specific (Istio's host.Names Intersection). */
export function intersectHosts(server: readonly string[], vs: readonly string[]): string[] {
  const out: string[] = [];
  for (const s of server) {
    for (const v of vs) {
      const pick = hostSubsetOf(s, v) ? s : hostSubsetOf(v, s) ? v : undefined;
      if (pick !== undefined && !out.includes(pick)) out.push(pick);
    }
  }
  return out;
}

/** A virtual host of a gateway route table: one domain, and the VirtualService whose routes it carries. */
export interface GatewayHostPlan {
  domain: string;
  /** Absent for an httpsRedirect server's hosts: every request is redirected, no route is consulted. */
  vs?: Scoped<VirtualServiceSpec>;
  server: ServerRef;
  /** httpsRedirect: answer 301 to https, on `port` when the Gateway serves the host over TLS there. */
  redirect?: { port?: number };
  at: Origin;
}

/**
 * Where an httpsRedirect sends a host: the port of the Gateway's TLS server for it. Istio's require_tls keeps the
 * requested port (`http://h:8080` -> `https://h:8080`), which only works on 80 and 443; this redirects to the TLS
 * port, and leaves the port out only where that is 443 and the plaintext port 80 (Envoy drops `:80` itself).
 */
function httpsPortFor(s: ServerRef, host: string): number | undefined {
  const serves = (x: GatewayServer) => x.tls && !isL4Server(x) && x.hosts.some((h) => hostSubsetOf(host, h.host));
  const tls = s.gateway.spec.servers.find(serves);
  if (!tls) return undefined;
  return tls.port.number === 443 && s.server.port.number === 80 ? undefined : tls.port.number;
}

/** The virtual hosts a server contributes: bound VirtualServices' hosts it admits, or its own for a redirect. */
export function serverHosts(model: MeshModel, s: ServerRef): GatewayHostPlan[] {
  const { server } = s;
  if (server.httpsRedirect) {
    return server.hosts.map((h) => {
      const port = httpsPortFor(s, h.host);
      return { domain: h.host, server: s, redirect: port !== undefined ? { port } : {}, at: h.at };
    });
  }
  const out: GatewayHostPlan[] = [];
  if (isL4Server(server)) return out; // its VirtualServices' tcp or tls routes (gateway-l4.ts)
  for (const vs of boundVirtualServices(model, refOf(s.gateway))) {
    if (vs.spec.http.length === 0) continue; // only tcp or tls routes: nothing for an HTTP server
    const admitted = admittedHosts(server, vs.namespace);
    const hosts = vs.spec.hosts.map((h) => h.value.toLowerCase());
    for (const domain of intersectHosts(admitted, hosts)) {
      const at = vs.spec.hosts.find((h) => h.value.toLowerCase() === domain)?.at ?? vs.origin;
      out.push({ domain, vs, server: s, at });
    }
  }
  return out;
}

/**
 * The route tables of a listener's HTTP servers: one for all plaintext servers of a port, one per TLS server (its
 * own SNI). L4 servers have none (gateway-l4.ts plans their filter chains).
 */
export function routeTablesOf(plan: GatewayListenerPlan): ServerRef[][] {
  const http = plan.servers.filter((s) => !isL4Server(s.server));
  if (http.length === 0) return [];
  return plan.tls ? http.map((s) => [s]) : [http];
}

/** SNI names a TLS server answers: none (every name) when one of its hosts is `*`. */
export function sniNames(server: GatewayServer): string[] {
  const names = [...new Set(server.hosts.map((h) => h.host))];
  return names.includes('*') ? [] : names.sort();
}

/** What Envoy would reject or what could never take effect, with the policy line that causes it. */
export function checkGateways(model: MeshModel, diags: Diagnostics): void {
  for (const g of model.gateways.list) {
    if (!model.workloads.some((w) => labelsMatch(g.spec.selector, w.labels))) {
      const at = { location: g.at['spec.selector'] ?? g.origin, object: objectRef('Gateway', g) };
      diags.report('CH0303', 'selector matches no WorkloadEntry in any namespace', at);
    }
  }
  for (const w of model.workloads) {
    if (!isGatewayWorkload(model, w)) continue;
    for (const plan of gatewayListeners(model, w)) checkListener(model, w, plan, diags);
  }
  checkUnservedVirtualServices(model, diags);
}

function checkListener(model: MeshModel, w: Workload, plan: GatewayListenerPlan, diags: Diagnostics): void {
  const where = `${plan.address}:${plan.port} of ${w.id}`;
  const mixed = plan.servers.find((s) => speaksTls(s.server) !== plan.tls);
  if (mixed) {
    const message = `${serverName(mixed)} and ${serverName(plan.servers[0])} share ${where}; only one speaks TLS`;
    diags.report('CH0404', message, { location: mixed.server.at, object: objectRef('Gateway', mixed.gateway) });
    return;
  }
  if (plan.tls) {
    const sni = new Map<string, ServerRef>();
    // PASSTHROUGH servers' names are their tls routes' SNI hosts, checked with them (gateway-l4.ts).
    for (const s of plan.servers.filter((x) => !x.server.passthrough)) {
      for (const name of sniNames(s.server).concat(sniNames(s.server).length === 0 ? ['*'] : [])) {
        const prev = sni.get(name);
        if (prev) {
          const what = name === '*' ? 'every name' : name;
          const message = `${serverName(s)} and ${serverName(prev)} both serve ${what} over TLS on ${where}`;
          const related = [{ message: 'the other server', location: prev.server.at }];
          diags.report('CH0404', message, { location: s.server.at, object: objectRef('Gateway', s.gateway), related });
        }
        sni.set(name, s);
      }
    }
  }
  for (const table of routeTablesOf(plan)) {
    const seen = new Map<string, GatewayHostPlan>();
    for (const h of table.flatMap((s) => serverHosts(model, s))) {
      const prev = seen.get(h.domain);
      // The same VirtualService through two servers of one Gateway routes alike: one virtual host serves both.
      if (prev && (prev.vs !== h.vs || prev.server.gateway !== h.server.gateway)) {
        const whose = (x: GatewayHostPlan) =>
          x.vs ? objectRef('VirtualService', x.vs) : `${serverName(x.server)} (httpsRedirect)`;
        const message =
          `host ${h.domain} on ${where} is routed by ${whose(h)} and by ${whose(prev)}; ` +
          'put its routes in one VirtualService';
        const object = h.vs ? objectRef('VirtualService', h.vs) : objectRef('Gateway', h.server.gateway);
        const related = [{ message: 'the other', location: prev.at }];
        diags.report('CH0408', message, { location: h.at, object, related });
      }
      if (!prev) seen.set(h.domain, h);
    }
  }
}

/**
 * What the server's credentials directory says of a credential (credentials/read-credential.ts); `unavailable`:
 * the server has no credentials directory at all, a warning (the server's TLS stays closed) rather than a reason
 * to serve nothing to the whole mesh.
 */
export type CredentialLookup = (
  name: string,
) =>
  | { ok: true; hasCertificate?: boolean; hasCa: boolean; warnings: string[] }
  | { ok: false; problem: string; unavailable?: true };

/**
 * Every credential a Gateway that selects a workload names must be readable and valid, with a CA when the server
 * verifies clients; otherwise the revision is rejected at the credentialName line (the last good one keeps serving).
 */
export function checkGatewayCredentials(model: MeshModel, lookup: CredentialLookup, diags: Diagnostics): void {
  for (const g of model.gateways.list) {
    if (!model.workloads.some((w) => labelsMatch(g.spec.selector, w.labels))) continue; // nothing would serve it
    g.spec.servers.forEach((s, i) => {
      if (!s.tls || s.tls.mode === 'ISTIO_MUTUAL') return;
      const state = lookup(s.tls.credentialName);
      const name = s.tls.credentialName;
      const path = `spec.servers[${i}].tls.credentialName`;
      const at = { location: s.tls.credentialAt, path, object: objectRef('Gateway', g) };
      if (!state.ok) {
        const severity = state.unavailable ? { severity: 'warning' as const } : {};
        diags.report('CH0308', `credential ${name}: ${state.problem}`, { ...at, ...severity });
      } else if (state.hasCertificate === false) {
        diags.report('CH0308', `credential ${name} has only ca.crt; a server needs tls.crt and tls.key`, at);
      } else if (s.tls.mode !== 'SIMPLE' && !state.hasCa) {
        diags.report('CH0308', `credential ${name} has no ca.crt, which ${s.tls.mode} needs to verify clients`, at);
      } else {
        for (const w of state.warnings) {
          diags.report('CH0308', `credential ${name}: ${w}`, { ...at, severity: 'warning' });
        }
      }
    });
  }
}

/** A VirtualService bound to a gateway none of whose servers admits its hosts routes nothing there. */
function checkUnservedVirtualServices(model: MeshModel, diags: Diagnostics): void {
  for (const [ref, list] of model.gateways.bound) {
    const gateway = model.gateways.list.find((g) => refOf(g) === ref)!;
    for (const vs of list) {
      const serves = (server: GatewayServer, index: number) => {
        const s = { gateway, index, server };
        return serverHosts(model, s).some((h) => h.vs === vs) || l4RoutedBy(model, s).includes(vs);
      };
      const served = gateway.spec.servers.some(serves);
      if (served) continue;
      const at = vs.spec.gateways.find((g) => gatewayRef(g.value, vs.namespace) === ref)?.at ?? vs.origin;
      const message =
        `no server of Gateway ${ref} serves any of this VirtualService's hosts for namespace ` +
        `${vs.namespace}: it routes nothing there`;
      diags.report('CH0407', message, { location: at, object: objectRef('VirtualService', vs) });
    }
  }
}
