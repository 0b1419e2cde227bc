/**
 * Stage: explain (Envoy-free). "Why is this request allowed or denied?" From policy alone, following the request
 * through the same per-proxy IR the xDS translation uses (ir/compile.ts):
 *
 *  1. the caller's sidecar: which egress listener has a virtual host for the authority (its Sidecar egress scope;
 *     none: Envoy answers 404), which route matches (VirtualService order), redirects, direct responses and aborts,
 *     the weighted destinations, and what the route rewrites (path prefix, authority, request headers);
 *  2. each destination workload's sidecar: whether the connection is made at all (the caller originates mTLS when
 *     the cluster says so; a STRICT callee refuses plaintext, a DISABLE one cannot speak TLS, the server's SPIFFE id
 *     must be one the cluster accepts), so whether the caller's identity arrives; JWT verification (401 for a token
 *     no RequestAuthentication of the callee accepts; ignored when none applies);
 *  3. authorization (authz.ts, mirroring xds/filters/rbac.ts), naming the deciding rule with file:line, or the mesh
 *     default.
 *
 * test/e2e/explain.test.ts checks the answers against real Envoy sidecars.
 */
import { serviceForName } from './upstream-tls.js';
import { routeTableId } from '../ir/routes.js';
import type { ListenerIR } from '../ir/types.js';
import { workloadById } from '../model/index.js';
import type { MeshModel, Workload } from '../model/mesh-model.js';
import { isHttpProtocol } from '../policy/types.js';
import { normalizeAuthority, normalizePath } from '../ir/request-normalization.js';
import { followTcp, tcpVerdict } from './tcp-steps.js';
import { explainFromGateway, virtualHostFor } from './explain-gateway.js';
import { isGatewayWorkload } from '../model/gateways.js';
import {
  ExplainError,
  followRoute,
  proxyOf,
  routeMatches,
  where,
  type DestinationVerdict,
  type ExplainRequest,
  type Explanation,
  type HttpRequest,
} from './steps.js';

export { connection, ExplainError, proxyOf, remoteAddress } from './steps.js';
export type { DestinationVerdict, Explanation, ExplainRequest, ExtAuthzStep, Transport } from './steps.js';

function resolveCaller(model: MeshModel, from: string): Workload {
  const w = workloadById(model, from);
  if (w) return w;
  const [ns, name] = from.split('/');
  const svc = model.services.find((s) => s.namespace === ns && s.name === name);
  const ep = svc?.endpoints.find((e) => e.workload);
  const w2 = ep ? workloadById(model, ep.workload) : undefined;
  if (!w2)
    throw new ExplainError(
      `no workload or service "${from}" (known workloads: ${model.workloads.map((x) => x.id).join(', ')})`,
    );
  return w2;
}

export function explain(model: MeshModel, q: ExplainRequest, now = Date.now()): Explanation {
  return markRegistered(model, explainRequest(model, q, now));
}

/** Names the WorkloadGroup of every registered workload in an explanation (they are explained like the others). */
function markRegistered(model: MeshModel, e: Explanation): Explanation {
  const group = (id: string) => workloadById(model, id)?.registered?.group;
  const from = group(e.from.workload);
  const destinations = e.destinations.map((d) => {
    const g = group(d.workload);
    return g ? { ...d, registered: g } : d;
  });
  return { ...e, from: from ? { ...e.from, registered: from } : e.from, destinations };
}

function explainRequest(model: MeshModel, q: ExplainRequest, now: number): Explanation {
  const caller = resolveCaller(model, q.from);
  // From a gateway workload, the request comes from outside to one of its servers (explain-gateway.ts).
  if (isGatewayWorkload(model, caller)) return explainFromGateway(model, caller, q, now);
  const colon = q.to.lastIndexOf(':');
  const host = colon > 0 ? q.to.slice(0, colon) : q.to;
  if (colon > 0 && !/^\d+$/.test(q.to.slice(colon + 1)))
    throw new ExplainError(`--to "${q.to}": the port must be a number`);
  // A name, a ServiceEntry address or a name a wildcard (DYNAMIC_DNS) host covers.
  const svc = serviceForName(model, host);
  if (!svc) throw new ExplainError(`no ServiceEntry declares host ${host}`);
  const httpPorts = svc.ports.filter((p) => isHttpProtocol(p.protocol));
  const mainPort = (httpPorts.find((p) => p.number === 80) ?? httpPorts[0])?.number;
  const port = colon > 0 ? Number(q.to.slice(colon + 1)) : (mainPort ?? svc.ports[0].number);
  const method = (q.method ?? 'GET').toUpperCase();
  // Sidecars drop headers whose names hold an underscore (see xds/resources/listener.ts).
  const given = Object.fromEntries(
    Object.entries(q.headers ?? {})
      .filter(([k]) => !k.includes('_'))
      .map(([k, v]) => [k.toLowerCase(), v]),
  );
  const authority = normalizeAuthority(given.host ?? q.to);
  delete given.host;
  const base: Explanation = {
    from: { workload: caller.id, identity: caller.identity },
    to: { host, port },
    verdict: 'DENY',
    routed: false,
    destinations: [],
  };
  // The caller's connection manager normalises the path before routing (Mesh pathNormalization).
  const normalized = normalizePath(q.path ?? '/', model.mesh.pathNormalization);
  if (!normalized.ok)
    return { ...base, status: 400, note: `the caller's sidecar refuses the request: ${normalized.reason}` };
  const req: HttpRequest = { path: normalized.path, headers: { ...given, ':method': method, ':authority': authority } };

  const sp = svc.ports.find((p) => p.number === port);
  if (sp && !isHttpProtocol(sp.protocol)) return explainTcp(model, caller, svc.host, port, base);

  // 1. The caller's sidecar: an egress listener whose route table has a virtual host for this authority.
  const callerIR = proxyOf(model, caller.id);
  const hit = callerIR.routeTables
    .map((t) => ({
      t,
      // Envoy's choice: the exact domain, else the longest wildcard (a DYNAMIC_DNS host), else `*`.
      vh: virtualHostFor(t.virtualHosts, authority),
    }))
    .find((x) => x.vh);
  if (!hit) {
    const sp = svc.ports.find((p) => p.number === port);
    const why =
      sp && !isHttpProtocol(sp.protocol)
        ? `port ${port} of ${host} is ${sp.protocol}: the sidecar's HTTP egress listener has no route for it (404)`
        : `${authority} is not in ${caller.id}'s Sidecar egress scope: ` +
          'its sidecar has no virtual host for it and answers 404';
    return { ...base, status: 404, note: why };
  }
  const tableId = routeTableId(hit.t.key);
  const servesTable = (l: ListenerIR) =>
    l.direction === 'outbound' && l.http?.rds !== undefined && routeTableId(l.http.rds) === tableId;
  const egressListener = callerIR.listeners.find(servesTable);
  const egress = egressListener ? `${egressListener.address}:${egressListener.port}` : `port ${hit.t.key.port}`;
  const route = hit.vh!.routes.find((r) => routeMatches(r, req));
  if (!route)
    return {
      ...base,
      routed: false,
      egress,
      status: 404,
      note: "no route of the VirtualService matches this request: the caller's sidecar answers 404",
    };
  const routeInfo = { name: route.name, at: where(route.origins[0]), kind: route.action.kind };
  const routed = { ...base, routed: true, egress, route: routeInfo };
  const extra = { ...(q.jwtClaims ? { jwtClaims: q.jwtClaims } : {}), ...(q.extAuthz ? { extAuthz: q.extAuthz } : {}) };
  const proxy = "the caller's sidecar";
  return followRoute(model, caller, route, req, { routed, method, now, appended: '127.0.0.1', proxy, ...extra });
}

/**
 * A TCP connection: the caller's TCP egress listener for host:port (none: nothing carries it), then per endpoint
 * the connection (mTLS) and the callee's L4 authorization. There is no HTTP status; a denial closes the connection.
 */
function explainTcp(model: MeshModel, caller: Workload, host: string, port: number, base: Explanation): Explanation {
  const callerIR = proxyOf(model, caller.id);
  const listener = callerIR.listeners.find(
    (l) => l.direction === 'outbound' && l.tcp?.service?.host === host && l.tcp.service.port === port,
  );
  if (!listener) {
    return {
      ...base,
      note:
        `${caller.id} has no TCP egress listener for ${host}:${port}: ` +
        'declare one in its Sidecar egress (port with protocol TCP)',
    };
  }
  const egress = `${listener.address}:${listener.port}`;
  const tcp = listener.tcp!;
  if (tcp.sni) {
    const chains = tcp.sni.map((c) => `${c.serverNames.join(', ')} -> ${c.route}`).join('; ');
    const note =
      `TLS routed by the SNI the client sends (${chains}; any other name: closed); ` + 'explain does not choose by SNI';
    return { ...base, verdict: 'DEPENDS', routed: true, egress, note };
  }
  const destinations = followTcp(model, caller, tcp);
  const route = tcp.route ? { route: { name: tcp.route, kind: 'tcp' } } : {};
  return {
    ...base,
    verdict: tcpVerdict(destinations),
    routed: true,
    egress,
    ...route,
    destinations,
    note: 'TCP: no HTTP status; a denied connection is closed',
  };
}

/** What a gateway does with a request it let through: its route, then that route's destinations. */
function formatOnward(out: string[], b: Explanation, all: boolean, i: string): void {
  const at = b.route?.at && b.route.at !== '<mesh>' ? ` at ${b.route.at}` : '';
  if (b.route) out.push(`${i}then the gateway's route ${b.route.name} (${b.route.kind})${at}`);
  if (b.note) out.push(`${i}${b.note}`);
  formatDestinations(out, b.destinations, all, `${i}  `);
}

/** Each destination's verdict, indented by `i` (a gateway's onward destinations are indented further). */
function formatDestinations(out: string[], ds: DestinationVerdict[], all: boolean, i: string): void {
  const reg = (g: string | undefined) => (g ? ` (registered into ${g})` : '');
  for (const d of ds) {
    const conn =
      d.transport === 'mTLS'
        ? 'sent over mTLS'
        : d.transport === 'TLS'
          ? `sent over ${d.tls}`
          : d.transport === 'plaintext'
            ? 'sent in plaintext, no caller identity'
            : 'no connection';
    // A TCP destination (tcp-steps.ts) sees a connection, not a request.
    const tcp = d.request.method === '-';
    const unit = `${d.share.toFixed(0)}% of ${tcp ? 'connections' : 'requests'}`;
    const how = d.server
      ? `${unit}, server ${d.server.name} (${d.server.tls}), ${conn}`
      : `${unit}, mTLS ${d.mtls}, ${conn}`;
    out.push(`${i}${d.decision} at ${d.workload}${reg(d.registered)} (${how}): ${d.reason}`);
    const seen = tcp
      ? `a connection to ${d.request.authority}`
      : `${d.request.method} ${d.request.authority}${d.request.path}`;
    out.push(`${i}  the callee sees: ${seen} from ${d.request.sourceIp}`);
    if (d.extAuthz) {
      const assumed = d.extAuthz.assumed ? `, assumed to ${d.extAuthz.assumed}` : '';
      out.push(`${i}  asks ${d.extAuthz.provider} first (${d.extAuthz.rule} at ${d.extAuthz.at}${assumed})`);
      const ia = d.extAuthz.ifAllowed;
      const denies = 'if it denies: DENY (403, or the status it answers with)';
      if (ia) out.push(`${i}  if ${d.extAuthz.provider} allows: ${ia.decision} (${ia.status}); ${denies}`);
    }
    if (d.decidedBy) out.push(`${i}  decided by ${d.decidedBy.name} at ${d.decidedBy.at}`);
    if (all) for (const m of d.matched) out.push(`${i}  matched ${m.action} ${m.name} at ${m.at}`);
    for (const [action, r] of Object.entries(d.dryRun ?? {})) {
      out.push(
        `${i}  dry-run ${action.toUpperCase()} policies would say ${r.result}` +
          `${r.policy ? ` (${r.policy})` : ''}; not enforced`,
      );
    }
    if (d.beyond) formatOnward(out, d.beyond, all, `${i}  `);
  }
}

export function formatExplanation(e: Explanation, all: boolean): string {
  const out: string[] = [];
  const reg = (g: string | undefined) => (g ? ` (registered into ${g})` : '');
  const status = e.status !== undefined ? ` (${e.status})` : '';
  out.push(`${e.verdict}${status}: ${e.from.workload}${reg(e.from.registered)} -> ${e.to.host}:${e.to.port}`);
  const g = e.gateway;
  out.push(`  ${g ? "the gateway's identity towards the mesh" : 'caller identity'}: ${e.from.identity}`);
  if (g) {
    const r = g.request;
    const tls = g.tls === 'plaintext' ? (g.l4 ? 'TCP' : 'plaintext') : `TLS ${g.tls}`;
    out.push(`  from outside to the gateway's listener ${g.listener}, server ${g.server} (${tls})`);
    const remote = r.remoteIp !== r.sourceIp ? ` (remote.ip ${r.remoteIp})` : '';
    const l4 = g.l4 && (g.l4.sni !== undefined ? `a TLS connection (SNI ${g.l4.sni})` : 'a TCP connection');
    out.push(`    the gateway sees: ${l4 || `${r.method} ${r.authority}${r.path}`} from ${r.sourceIp}${remote}`);
    out.push(`    ${g.decision} at the gateway: ${g.reason}`);
    if (g.decidedBy) out.push(`    decided by ${g.decidedBy.name} at ${g.decidedBy.at}`);
    if (all) for (const m of g.matched) out.push(`    matched ${m.action} ${m.name} at ${m.at}`);
  }
  const by = g ? 'the gateway' : 'the egress listener on';
  const notRouted = e.egress && !g ? `no (egress listener ${e.egress})` : 'no';
  out.push(`  routed: ${e.routed ? `yes, by ${by} ${g ? g.listener : e.egress}` : notRouted}`);
  if (e.route)
    out.push(
      `  route: ${e.route.name} (${e.route.kind})${e.route.at && e.route.at !== '<mesh>' ? ` at ${e.route.at}` : ''}`,
    );
  if (e.note) out.push(`  ${e.note}`);
  formatDestinations(out, e.destinations, all, '  ');
  return out.join('\n');
}
