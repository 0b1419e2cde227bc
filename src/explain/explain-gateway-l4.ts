/**
 * Stage: explain (Envoy-free). A TCP or TLS connection arriving at a gateway's L4 server (a tcp_proxy chain,
 * ir/gateway.ts): the gateway's L4 authorization on what a connection carries (the client's address, the SNI, a
 * principal only from a verified client certificate, which explain cannot know), then the tcp or tls route's
 * weighted destinations as from any proxy (tcp-steps.ts): mTLS with the gateway's identity, the callee's L4 rules.
 */
import type { GatewayChainIR, ListenerIR } from '../ir/types.js';
import type { MeshModel, Workload } from '../model/mesh-model.js';
import type { RequestFacts } from './authz.js';
import { chainSecurity } from './gateway-connection.js';
import type { Explanation, GatewayHop } from './steps.js';
import { followTcp, l4Decision, tcpVerdict } from './tcp-steps.js';

export interface L4Arrival {
  listener: ListenerIR;
  chain: GatewayChainIR;
  /** The server name the client sends (TLS chains). */
  sni: string;
  sourceIp: string;
}

/** How the chain meets the client's bytes, for people and the hop's `tls`. */
function chainTls(chain: GatewayChainIR): GatewayHop['tls'] {
  return chain.tls?.mode ?? (chain.serverNames.length > 0 ? 'PASSTHROUGH' : 'plaintext');
}

export function explainGatewayL4(model: MeshModel, gw: Workload, a: L4Arrival, base: Explanation): Explanation {
  const { listener, chain, sourceIp } = a;
  const tcp = chain.tcp!;
  const tls = chainTls(chain);
  const sni = tls === 'plaintext' ? {} : { sni: a.sni };
  const facts: RequestFacts = {
    sourceIp,
    remoteIp: sourceIp,
    destinationIp: listener.address,
    host: '',
    port: listener.port,
    method: '',
    path: '',
    headers: {},
    ...sni,
  };
  const decision = l4Decision(chainSecurity(listener, chain), facts, 'the gateway');
  const hop: GatewayHop = {
    workload: gw.id,
    listener: `${listener.address}:${listener.port}`,
    server: chain.servers.join(', '),
    tls,
    request: { method: '-', authority: a.sni, path: '-', sourceIp, remoteIp: sourceIp },
    l4: sni,
    ...decision,
  };
  const kind = tls === 'PASSTHROUGH' ? 'tls' : 'tcp';
  const certificate = tls === 'MUTUAL' || tls === 'OPTIONAL_MUTUAL';
  const unknownPeer = certificate
    ? "; explain does not know the client certificate's SPIFFE id: principals rules are evaluated without one"
    : '';
  const routed = { ...base, gateway: hop, egress: hop.listener, route: { name: tcp.route, kind } };
  if (decision.decision === 'DENY') return { ...routed, note: `the gateway closes the connection${unknownPeer}` };
  const destinations = followTcp(model, gw, tcp);
  const through =
    tls === 'PASSTHROUGH' ? "; the client's TLS is not terminated: it travels inside the gateway's mTLS" : '';
  const note = `TCP: no HTTP status; a denied connection is closed${through}${unknownPeer}`;
  return { ...routed, routed: true, verdict: tcpVerdict(destinations), destinations, note };
}
