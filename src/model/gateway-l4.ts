/**
 * Stage: model. The filter chains of a gateway's L4 servers, Istio's way (pilot's gateway.go): a PASSTHROUGH
 * server gets one chain per matching tls route match, chosen by that match's `sniHosts` (the client's TLS is never
 * terminated); a TCP server, or a TLS server that terminates, gets one chain whose bytes go where the first tcp
 * route of the first bound VirtualService that matches says. A route matches a server when its `port` is unset or
 * the server's, and its `gateways` (else the VirtualService's) include this gateway; the VirtualService's hosts
 * must intersect the server's, as for HTTP. Also the checks Envoy would otherwise refuse or that would never take
 * effect: two chains for one SNI name, a TCP server sharing a plaintext port, an L4 server nothing routes.
 */
import type { Diagnostics, Origin } from '../diag/diagnostic.js';
import type { Destination, GatewayName, VirtualServiceSpec } from '../policy/traffic-types.js';
import { objectRef } from '../policy/types.js';
import {
  admittedHosts,
  boundVirtualServices,
  gatewayListeners,
  intersectHosts,
  isGatewayWorkload,
  isL4Server,
  matchApplies,
  refOf,
  serverName,
  sniNames,
  type GatewayListenerPlan,
  type ServerRef,
} from './gateways.js';
import type { MeshModel, Workload } from './mesh-model.js';
import type { Scoped } from './security.js';

/** One filter chain of an L4 server: the SNI names it answers (none: every name) and the route it forwards by. */
export interface L4ChainPlan {
  server: ServerRef;
  serverNames: string[];
  vs: Scoped<VirtualServiceSpec>;
  /** `<namespace>/<name>/tcp[i]` or `.../tls[i]`. */
  route: string;
  destinations: Destination[];
  at: Origin;
}

/** A match's `port` and `gateways` hold at this server (l4SingleMatch: sourceLabels play no part on gateways). */
function holds(m: { port?: number; gateways?: GatewayName[] }, vs: Scoped<VirtualServiceSpec>, s: ServerRef) {
  return (m.port === undefined || m.port === s.server.port.number) && matchApplies(m, vs.namespace, refOf(s.gateway));
}

/** The VirtualServices bound to the server's Gateway whose hosts the server admits (pickMatchingGatewayHosts). */
function admitting(model: MeshModel, s: ServerRef): Scoped<VirtualServiceSpec>[] {
  return boundVirtualServices(model, refOf(s.gateway)).filter((vs) => {
    const hosts = vs.spec.hosts.map((h) => h.value.toLowerCase());
    return intersectHosts(admittedHosts(s.server, vs.namespace), hosts).length > 0;
  });
}

/** The chains of one L4 server; none for an HTTP server. */
export function l4Chains(model: MeshModel, s: ServerRef): L4ChainPlan[] {
  if (!isL4Server(s.server)) return [];
  const out: L4ChainPlan[] = [];
  for (const vs of admitting(model, s)) {
    const name = `${vs.namespace}/${vs.name}`;
    if (s.server.passthrough) {
      vs.spec.tls.forEach((r, i) => {
        for (const m of r.match.filter((x) => x.sniHosts.length > 0 && holds(x, vs, s))) {
          const serverNames = [...new Set(m.sniHosts.map((h) => h.value.toLowerCase()))].sort();
          out.push({ server: s, serverNames, vs, route: `${name}/tls[${i}]`, destinations: r.route, at: m.at });
        }
      });
      continue;
    }
    // TCP, or TLS terminated by the server: the first tcp route that matches, of the first VirtualService.
    const i = vs.spec.tcp.findIndex((r) => r.match.length === 0 || r.match.some((m) => holds(m, vs, s)));
    if (i < 0) continue;
    const r = vs.spec.tcp[i];
    const serverNames = s.server.tls ? sniNames(s.server) : [];
    return [{ server: s, serverNames, vs, route: `${name}/tcp[${i}]`, destinations: r.route, at: r.at }];
  }
  return out;
}

/** The VirtualServices whose tcp or tls routes an L4 server forwards by. */
export function l4RoutedBy(model: MeshModel, s: ServerRef): Scoped<VirtualServiceSpec>[] {
  return [...new Set(l4Chains(model, s).map((c) => c.vs))];
}

/** Envoy refuses two filter chains with the same match; a server nothing routes closes every connection. */
export function checkL4Gateways(model: MeshModel, diags: Diagnostics): void {
  for (const w of model.workloads) {
    if (!isGatewayWorkload(model, w)) continue;
    for (const plan of gatewayListeners(model, w)) checkL4Listener(model, w, plan, diags);
  }
}

function checkL4Listener(model: MeshModel, w: Workload, plan: GatewayListenerPlan, diags: Diagnostics): void {
  const where = `${plan.address}:${plan.port} of ${w.id}`;
  const l4 = plan.servers.filter((s) => isL4Server(s.server));
  if (l4.length === 0) return;
  if (!plan.tls && plan.servers.length > 1) {
    const s = l4[0];
    const other = plan.servers.find((x) => x !== s)!;
    const message =
      `${serverName(s)} (${s.server.port.protocol}) and ${serverName(other)} share ${where}; ` +
      'plaintext TCP carries nothing to tell them apart: give each its own port';
    diags.report('CH0404', message, { location: s.server.at, object: objectRef('Gateway', s.gateway) });
    return;
  }
  // SNI names of the chains on this listener: HTTP servers' are checked in gateways.ts, against each other.
  const claimed = new Map<string, string>();
  for (const s of plan.servers) {
    if (isL4Server(s.server) || s.server.passthrough) continue;
    for (const n of sniNames(s.server).length > 0 ? sniNames(s.server) : ['*']) claimed.set(n, serverName(s));
  }
  for (const s of l4) {
    const chains = l4Chains(model, s);
    if (chains.length === 0) {
      const what = s.server.passthrough ? 'tls route (sniHosts)' : 'tcp route';
      const message =
        `no ${what} of a VirtualService bound to ${refOf(s.gateway)} matches ${serverName(s)}: ` +
        'the gateway closes its connections';
      const object = objectRef('Gateway', s.gateway);
      diags.report('CH0407', message, { location: s.server.at, object, severity: 'warning' });
      continue;
    }
    for (const c of chains) {
      for (const n of c.serverNames.length > 0 ? c.serverNames : ['*']) {
        const prev = claimed.get(n);
        const who = s.server.passthrough ? `${c.route} (${serverName(s)})` : serverName(s);
        if (prev && prev !== who) {
          const what = n === '*' ? 'every name' : n;
          const message = `${who} and ${prev} both take ${what} on ${where}; Envoy cannot tell them apart`;
          const object = s.server.passthrough ? objectRef('VirtualService', c.vs) : objectRef('Gateway', s.gateway);
          diags.report('CH0404', message, { location: c.server.server.passthrough ? c.at : s.server.at, object });
        }
        claimed.set(n, who);
      }
    }
  }
}
