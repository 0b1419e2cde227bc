/**
 * Stage: decode. VirtualService `tls:` routes (Istio's TLSRoute): TLS connections routed by the SNI of the client's
 * handshake, without terminating them, to weighted destinations. They take effect on gateways' PASSTHROUGH servers;
 * at sidecars (`mesh`) they are refused for now: a Sidecar egress port with protocol TLS forwards to its one host.
 */
import type { MapReader } from '../reader.js';
import type { GatewayName, TlsMatch, TlsRoute } from '../traffic-types.js';
import { DNS_NAME, hostSubsetOf } from './common.js';
import { readGateways, readL4Destinations } from './traffic-common.js';

type Hosts = { value: string }[];

/** Istio's validateSniHost: a (wildcard) DNS name, covered by one of the VirtualService's hosts. */
function readSniHosts(m: MapReader, hosts: Hosts): TlsMatch['sniHosts'] {
  const list = m.strList('sniHosts', { required: true, nonEmpty: true }) ?? [];
  return list.filter((h, i) => {
    const path = `${m.sub('sniHosts')}[${i}]`;
    const name = h.value.toLowerCase();
    const why = !DNS_NAME.test(name)
      ? 'is not a DNS name (wildcards as *.example.com)'
      : !hosts.some((x) => hostSubsetOf(name, x.value.toLowerCase()))
        ? `is not covered by any of the VirtualService's hosts (${hosts.map((x) => x.value).join(', ')})`
        : undefined;
    if (why)
      m.ctx.diags.report('CH0204', `${path}: "${h.value}" ${why}`, { location: h.at, path, object: m.ctx.object });
    return !why;
  });
}

function readMatch(m: MapReader, hosts: Hosts, vsGateways: GatewayName[]): TlsMatch {
  const sniHosts = readSniHosts(m, hosts);
  const port = m.int('port', { min: 1, max: 65535 });
  const gateways = m.has('gateways') ? readGateways(m) : undefined;
  const callers = 'is not supported for tls routes (Istio ignores it on gateways); remove it';
  m.unsupported(['sourceLabels', 'sourceNamespace'], callers);
  m.unsupported(['destinationSubnets'], 'cannot be honoured: explicit-mode sidecars do not see the dialled address');
  // Where the match applies: its own gateways, else the VirtualService's (Istio's rule).
  if ((gateways ?? vsGateways).some((g) => g.value === 'mesh')) {
    const why = 'tls routes at sidecars (gateway mesh) are not supported yet';
    const instead =
      'bind the VirtualService to a gateway with a PASSTHROUGH server, or give the sidecar a Sidecar ' +
      'egress port with protocol TLS (it forwards to its one host)';
    m.report('CH0205', gateways ? 'gateways' : undefined, `${why}; ${instead}`);
  }
  m.done();
  return { sniHosts, at: m.at, ...(port ? { port } : {}), ...(gateways ? { gateways } : {}) };
}

export function readTlsRoutes(spec: MapReader, hosts: Hosts, gateways: GatewayName[]): TlsRoute[] {
  return (spec.maps('tls') ?? []).map((r) => {
    const match = (r.maps('match', { required: true, nonEmpty: true }) ?? []).map((m) => readMatch(m, hosts, gateways));
    const route = readL4Destinations(r);
    r.done();
    return { match, route, at: r.at };
  });
}
