/**
 * Stage: decode. VirtualService `tls:` routes (Istio's TLSRoute): TLS connections routed by the SNI of the client's
 * handshake, without terminating them, to weighted destinations. They take effect on gateways' PASSTHROUGH servers
 * and, at the sidecars (`mesh`), on a Sidecar egress port with protocol TLS or HTTPS for the VirtualService's host.
 */
import type { MapReader } from '../reader.js';
import type { TlsMatch, TlsRoute } from '../traffic-types.js';
import { DNS_LABEL, DNS_NAME, hostSubsetOf } from './common.js';
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

function readMatch(m: MapReader, hosts: Hosts): TlsMatch {
  const sniHosts = readSniHosts(m, hosts);
  const port = m.int('port', { min: 1, max: 65535 });
  const sourceLabels = m.strMap('sourceLabels');
  const sourceNamespace = m.str('sourceNamespace', { pattern: DNS_LABEL, patternHint: 'a namespace' });
  const gateways = m.has('gateways') ? readGateways(m) : undefined;
  m.unsupported(['destinationSubnets'], 'cannot be honoured: explicit-mode sidecars do not see the dialled address');
  m.done();
  return {
    sniHosts,
    at: m.at,
    ...(port ? { port } : {}),
    ...(sourceLabels ? { sourceLabels } : {}),
    ...(sourceNamespace ? { sourceNamespace } : {}),
    ...(gateways ? { gateways } : {}),
  };
}

export function readTlsRoutes(spec: MapReader, hosts: Hosts): TlsRoute[] {
  return (spec.maps('tls') ?? []).map((r) => {
    const match = (r.maps('match', { required: true, nonEmpty: true }) ?? []).map((m) => readMatch(m, hosts));
    const route = readL4Destinations(r);
    r.done();
    return { match, route, at: r.at };
  });
}
