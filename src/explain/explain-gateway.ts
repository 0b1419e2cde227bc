/**
 * Stage: explain (Envoy-free). A request from outside arriving at a gateway (`explain --from <gateway workload>`):
 * the listener on the port asked for, the server whose filter chain takes it (by SNI for TLS, as Envoy chooses),
 * the gateway's own normalisation, JWT and authorization (remote.ip from X-Forwarded-For and the Mesh's trusted
 * hops), its route table's virtual host for the Host (port ignored, as on gateways) and route; then from the route
 * on as from any proxy (steps.ts): the mesh service's sidecars over mTLS, with the gateway's identity. A connection
 * to an L4 server (a tcp_proxy chain) is explain-gateway-l4.ts's.
 */
import { routeTableId } from '../ir/routes.js';
import type { ListenerIR, VirtualHostIR } from '../ir/types.js';
import type { MeshModel, Workload } from '../model/mesh-model.js';
import { normalizeAuthority, normalizePath } from '../ir/request-normalization.js';
import type { RequestFacts } from './authz.js';
import { chainFor, longest } from './gateway-connection.js';
import { explainGatewayL4 } from './explain-gateway-l4.js';
import { decideAt, ExplainError, followRoute, pathOnly, proxyOf, remoteAddress, routeMatches, where } from './steps.js';
import type { ExplainRequest, Explanation, GatewayHop, HttpRequest } from './steps.js';

/** The outside client's address when the question does not say (TEST-NET-1: some address on the Internet). */
export const DEFAULT_CLIENT_IP = '192.0.2.1';

/** What an outside request says: the authority (and gateway port) it is sent to, and the rest of explain's inputs. */
export type GatewayQuestion = Omit<ExplainRequest, 'from'>;

/** Envoy's domain match: exact, then the longest `*.suffix`, then `*` (the gateway's route tables ignore the port). */
export function virtualHostFor(vhs: readonly VirtualHostIR[], host: string): VirtualHostIR | undefined {
  const h = host.toLowerCase();
  const exact = vhs.find((v) => v.domains.includes(h));
  if (exact) return exact;
  const covers = (d: string) => d.startsWith('*.') && h.endsWith(d.slice(1));
  const suffix = longest(vhs.flatMap((x) => x.domains.filter(covers).map((d) => ({ x, n: d.length }))));
  return suffix ?? vhs.find((v) => v.domains.includes('*'));
}

function listenerFor(listeners: ListenerIR[], port: number | undefined): ListenerIR | undefined {
  const ports = [...new Set(listeners.map((l) => l.port))].sort((a, b) => a - b);
  if (port === undefined && ports.length > 1) {
    throw new ExplainError(`the gateway listens on ports ${ports.join(', ')}: say which with --to HOST:PORT`);
  }
  return listeners.find((l) => l.port === (port ?? ports[0]));
}

export function explainFromGateway(model: MeshModel, gw: Workload, q: GatewayQuestion, now: number): Explanation {
  const colon = q.to.lastIndexOf(':');
  if (colon > 0 && !/^\d+$/.test(q.to.slice(colon + 1))) {
    throw new ExplainError(`--to "${q.to}": the port must be a number`);
  }
  const host = (colon > 0 ? q.to.slice(0, colon) : q.to).toLowerCase();
  const ir = proxyOf(model, gw.id);
  const asked = colon > 0 ? Number(q.to.slice(colon + 1)) : undefined;
  const listener = listenerFor(
    ir.listeners.filter((l) => l.gateway),
    asked,
  );
  const port = listener?.port ?? asked ?? 0;
  const from = { workload: gw.id, identity: gw.identity };
  const base: Explanation = { from, to: { host, port }, verdict: 'DENY', routed: false, destinations: [] };
  if (!listener) return { ...base, note: `${gw.id} has no gateway listener on port ${port}: connection refused` };
  // Envoy picks the filter chain by the SNI the client sends (the Host header plays no part in it).
  const sni = (q.sni ?? host).toLowerCase();
  const chain = chainFor(listener, sni);
  if (!chain) {
    const note =
      `no server of ${gw.id} on port ${port} answers the name ${sni}: ` + 'no filter chain, the connection is closed';
    return { ...base, note };
  }
  const sourceIp = q.sourceIp ?? DEFAULT_CLIENT_IP;
  if (chain.tcp) return explainGatewayL4(model, gw, { listener, chain, sni, sourceIp }, base);
  if (chain.tls?.mode === 'ISTIO_MUTUAL') {
    const note =
      `${chain.servers.join(', ')} takes only mesh mTLS (ISTIO_MUTUAL): a client outside the mesh cannot ` +
      'complete the handshake; mesh workloads reach it through their sidecars (explain --from <workload>)';
    return { ...base, note };
  }
  const method = (q.method ?? 'GET').toUpperCase();
  // Gateways drop headers whose names hold an underscore, as sidecars do (xds/resources/http-connection-manager.ts).
  const kept = Object.entries(q.headers ?? {}).filter(([k]) => !k.includes('_'));
  const given = Object.fromEntries(kept.map(([k, v]) => [k.toLowerCase(), v]));
  const authority = normalizeAuthority(given.host ?? q.to);
  delete given.host;
  const normalized = normalizePath(q.path ?? '/', model.mesh.pathNormalization);
  if (!normalized.ok) return { ...base, status: 400, note: `the gateway refuses the request: ${normalized.reason}` };
  // The client's X-Forwarded-For as it arrives: nothing of ours is appended before the gateway decides.
  const remoteIp = remoteAddress(given['x-forwarded-for'], sourceIp, model.mesh.numTrustedProxies, '');
  const facts: RequestFacts = {
    sourceIp,
    remoteIp,
    destinationIp: listener.address,
    host: authority,
    port,
    method,
    path: pathOnly(normalized.path),
    headers: { ...given },
  };
  const said = { ...(q.jwtClaims ? { jwtClaims: q.jwtClaims } : {}), ...(q.extAuthz ? { extAuthz: q.extAuthz } : {}) };
  const decision = decideAt(listener.security!, facts, true, { ...said, now, who: 'the gateway' });
  const hop: GatewayHop = {
    workload: gw.id,
    listener: `${listener.address}:${port}`,
    server: chain.servers.join(', '),
    tls: chain.tls?.mode ?? 'plaintext',
    request: { method, authority, path: normalized.path, sourceIp, remoteIp },
    ...decision,
  };
  const atGateway = { ...base, gateway: hop, egress: hop.listener };
  if (decision.decision === 'DENY') {
    return { ...atGateway, status: decision.status, note: `the gateway answers ${decision.status}` };
  }
  // Routing: the chain's route table, the virtual host for the Host, the first matching route.
  const rds = chain.rds!;
  const table = ir.routeTables.find((t) => routeTableId(t.key) === routeTableId(rds));
  const vh = table ? virtualHostFor(table.virtualHosts, authority.replace(/:\d+$/, '')) : undefined;
  if (!vh) {
    const note = `no VirtualService bound to the gateway serves ${authority} on ${hop.server}: 404`;
    return { ...atGateway, status: 404, note };
  }
  const headers = { ...facts.headers, ':method': method, ':authority': authority };
  const req: HttpRequest = { path: normalized.path, headers };
  const route = vh.routes.find((r) => routeMatches(r, req));
  if (!route) {
    const note = 'no route of the VirtualService matches this request: the gateway answers 404';
    return { ...atGateway, status: 404, note };
  }
  const routeInfo = { name: route.name, at: where(route.origins[0]), kind: route.action.kind };
  const routed = { ...atGateway, routed: true, route: routeInfo };
  return followRoute(model, gw, route, req, { routed, method, now, appended: sourceIp, proxy: 'the gateway', ...said });
}
