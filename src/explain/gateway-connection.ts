/**
 * Stage: explain (Envoy-free). Which filter chain of a gateway listener takes a connection (Envoy's choice by SNI),
 * and whether a mesh workload's sidecar, sending through one of its clusters, reaches a gateway's server at all:
 * mesh mTLS (the cluster originates it, with the SNI Envoy sends) completes only with an ISTIO_MUTUAL server, a
 * plaintext connection only with a plaintext one. The chain's security is the gateway's own, lowered for HTTP or
 * for L4 chains (ir/gateway.ts). Shared by explain and graph.
 */
import type { ClusterIR, GatewayChainIR, InboundSecurityIR, ListenerIR } from '../ir/types.js';
import type { MeshModel, Workload } from '../model/mesh-model.js';
import { proxyOf } from './steps.js';

/** The item of the longest name: Envoy prefers the most specific wildcard. */
export const longest = <T>(xs: { x: T; n: number }[]): T | undefined => xs.sort((a, b) => b.n - a.n)[0]?.x;

/** The filter chain Envoy picks for an SNI: an exact server name, then the longest wildcard, then the catch-all. */
export function chainFor(l: ListenerIR, sni: string | undefined): GatewayChainIR | undefined {
  const chains = l.gateway!.chains;
  // Plaintext: one chain; TLS (terminated or passed through): chosen by SNI.
  if (!chains.some((c) => c.tls || c.serverNames.length > 0)) return chains[0];
  const name = (sni ?? '').toLowerCase();
  const named = chains.find((c) => c.serverNames.includes(name));
  if (named) return named;
  const covers = (n: string) => n.startsWith('*.') && name.endsWith(n.slice(1));
  const wild = longest(chains.flatMap((x) => x.serverNames.filter(covers).map((n) => ({ x, n: n.length }))));
  return wild ?? chains.find((c) => c.serverNames.length === 0);
}

/** The security a chain enforces: the gateway's, lowered for HTTP, or for TCP on L4 chains. */
export const chainSecurity = (l: ListenerIR, c: GatewayChainIR): InboundSecurityIR =>
  c.rds ? l.security! : l.gateway!.l4Security!;

export type GatewayConnection =
  | { transport: 'refused'; reason: string }
  | { transport: 'mTLS' | 'plaintext'; listener: ListenerIR; chain: GatewayChainIR; security: InboundSecurityIR };

/** A sidecar reaching gateway `gw` on `port` through `cluster` (see the module comment). */
export function gatewayConnection(
  model: MeshModel,
  cluster: ClusterIR | undefined,
  gw: Workload,
  port: number,
): GatewayConnection {
  const listener = proxyOf(model, gw.id).listeners.find((l) => l.gateway && l.port === port);
  if (!listener) return { transport: 'refused', reason: `${gw.id} has no gateway listener on port ${port}` };
  const tls = cluster?.tls;
  const host = cluster?.key.direction === 'outbound' ? cluster.key.host : undefined;
  const sni = tls ? (tls.sni ?? host) : undefined;
  const chain = chainFor(listener, sni);
  if (!chain) return { transport: 'refused', reason: `no server of ${gw.id} on port ${port} answers the SNI ${sni}` };
  const server = chain.servers.join(', ');
  if (tls && chain.tls?.mode !== 'ISTIO_MUTUAL')
    return { transport: 'refused', reason: `the caller originates mesh mTLS but ${server} is not ISTIO_MUTUAL` };
  if (!tls && (chain.tls || chain.serverNames.length > 0))
    return { transport: 'refused', reason: `the caller sends plaintext but ${server} expects TLS` };
  if (tls && !tls.sans.includes(gw.identity))
    return {
      transport: 'refused',
      reason: `${gw.id} runs as ${gw.identity}, which the caller's cluster does not accept`,
    };
  return { transport: tls ? 'mTLS' : 'plaintext', listener, chain, security: chainSecurity(listener, chain) };
}
