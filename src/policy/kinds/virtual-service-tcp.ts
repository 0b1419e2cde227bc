/**
 * Stage: decode. VirtualService `tcp:` routes (Istio's TCPRoute): the first route whose match holds picks weighted
 * destinations for a TCP connection. Matches on the service port, the caller's labels and namespace; explicit-mode
 * sidecars never see the address the application dialled, so `destinationSubnets` cannot be honoured.
 */
import type { MapReader } from '../reader.js';
import type { TcpMatch, TcpRoute } from '../traffic-types.js';
import { DNS_LABEL } from './common.js';
import { readGateways, readL4Destinations } from './traffic-common.js';

function readMatch(m: MapReader): TcpMatch {
  const port = m.int('port', { min: 1, max: 65535 });
  const sourceLabels = m.strMap('sourceLabels');
  const sourceNamespace = m.str('sourceNamespace', { pattern: DNS_LABEL, patternHint: 'a namespace' });
  m.unsupported(['destinationSubnets'], 'cannot be honoured: explicit-mode sidecars do not see the dialled address');
  const gateways = m.has('gateways') ? readGateways(m) : undefined;
  m.done();
  return {
    at: m.at,
    ...(gateways ? { gateways } : {}),
    ...(port ? { port } : {}),
    ...(sourceLabels ? { sourceLabels } : {}),
    ...(sourceNamespace ? { sourceNamespace } : {}),
  };
}

export function readTcpRoutes(spec: MapReader): TcpRoute[] {
  return (spec.maps('tcp') ?? []).map((r) => {
    const match = (r.maps('match') ?? []).map(readMatch);
    const route = readL4Destinations(r);
    r.done();
    return { match, route, at: r.at };
  });
}

/**
 * Whether a caller (its labels and namespace) connecting to `port` is selected by a route's matches; `here` says
 * whether a match's `gateways` let it apply where the route is built (model/gateways.ts matchApplies).
 */
export function tcpRouteMatches(
  r: TcpRoute,
  port: number,
  caller: { labels: Record<string, string>; namespace: string },
  here: (m: TcpMatch) => boolean,
): boolean {
  if (r.match.length === 0) return true;
  return r.match.some(
    (m) =>
      here(m) &&
      (m.port === undefined || m.port === port) &&
      (m.sourceNamespace === undefined || m.sourceNamespace === caller.namespace) &&
      Object.entries(m.sourceLabels ?? {}).every(([k, v]) => caller.labels[k] === v),
  );
}
