/**
 * Stage: decode. `networking.istio.io` ServiceEntry: the service registry.
 */
import type { MapReader } from '../reader.js';
import type { EndpointSpec, ServiceEntrySpec } from '../types.js';
import { DNS_NAME, readLabelSelector, readServicePort } from './common.js';
import { readEndpoint } from './workload-entry.js';

export function decodeServiceEntry(
  spec: MapReader | undefined,
  at: Record<string, import('../../diag/diagnostic.js').Origin>,
): ServiceEntrySpec | undefined {
  if (!spec) return undefined;
  const hosts = (spec.strList('hosts', { required: true, nonEmpty: true }) ?? []).filter((h, i) => {
    at[`spec.hosts[${i}]`] = h.at;
    if (!DNS_NAME.test(h.value)) {
      spec.ctx.diags.report('CH0204', `spec.hosts[${i}]: "${h.value}" is not a valid host name`, {
        location: h.at,
        path: `spec.hosts[${i}]`,
        object: spec.ctx.object,
      });
      return false;
    }
    if (h.value.startsWith('*')) {
      // Envoy cannot resolve a wildcard by DNS, and NONE would need the address the application dialled.
      const why =
        'a wildcard host needs the address the application dialled (resolution NONE) or a wildcard DNS lookup, ' +
        'neither of which an explicit-mode sidecar has; list each host the application uses (resolution: DNS)';
      spec.ctx.diags.report('CH0205', `spec.hosts[${i}]: ${why}`, {
        location: h.at,
        path: `spec.hosts[${i}]`,
        object: spec.ctx.object,
      });
      return false;
    }
    return true;
  });
  const portReaders = spec.maps('ports', { required: true, nonEmpty: true }) ?? [];
  const ports = portReaders.map((p) => readServicePort(p)).filter((p) => p !== undefined);
  portReaders.forEach((p, i) => (at[`spec.ports[${i}]`] = p.at));
  const seen = new Set<string>();
  portReaders.forEach((p, i) => {
    const port = ports[i];
    if (!port) return;
    for (const key of [`n:${port.number}`, `name:${port.name}`]) {
      if (seen.has(key))
        spec.ctx.diags.report(
          'CH0401',
          `spec.ports[${i}]: port ${key.startsWith('n:') ? port.number : `name "${port.name}"`} is listed twice`,
          { location: p.at, path: `spec.ports[${i}]`, object: spec.ctx.object },
        );
      seen.add(key);
    }
  });
  const location = (spec.str('location', { oneOf: ['MESH_INTERNAL', 'MESH_EXTERNAL'] }) ??
    'MESH_INTERNAL') as ServiceEntrySpec['location'];
  const given = spec.str('resolution', { oneOf: ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN'] }) as
    ServiceEntrySpec['resolution'] | undefined;
  const endpoints: EndpointSpec[] = [];
  for (const e of spec.maps('endpoints') ?? []) {
    const ep = readEndpoint(e);
    if (ep) endpoints.push(ep);
  }
  const workloadSelector = readLabelSelector(spec, 'workloadSelector', 'labels');
  if (workloadSelector && endpoints.length > 0)
    spec.report('CH0204', 'workloadSelector', 'cannot be combined with endpoints');
  // Istio's default is NONE; with endpoints or a workloadSelector the endpoints are known, and Chancery reads STATIC.
  const known = !!workloadSelector || endpoints.length > 0;
  const resolution = given ?? (known ? 'STATIC' : 'NONE');
  if (resolution === 'NONE') checkPassThrough(spec, endpoints.length > 0, !!workloadSelector);
  else rejectAddresses(spec);
  if (spec.has('workloadSelector')) at['spec.workloadSelector'] = spec.loc('workloadSelector');
  spec.unsupported(['exportTo', 'subjectAltNames']);
  spec.done();
  return {
    hosts: hosts.map((h) => h.value),
    ports,
    location,
    resolution,
    endpoints,
    ...(workloadSelector ? { workloadSelector } : {}),
  };
}

/**
 * resolution NONE: Istio passes the connection through to the address the application dialled. An explicit-mode
 * application dials its sidecar, so that address is known only when it is the host's own: the sidecar resolves the
 * host name itself (a DNS cluster), reaching what the application would have. VIPs, CIDRs and endpoints cannot
 * be honoured that way and are rejected, saying what to write instead.
 */
function checkPassThrough(spec: MapReader, endpoints: boolean, selector: boolean): void {
  if (endpoints) {
    const why = 'NONE takes no endpoints (Istio rejects them too): to send to these endpoints write resolution: STATIC';
    spec.report('CH0204', 'resolution', why);
  } else if (selector) {
    spec.report(
      'CH0205',
      'resolution',
      'NONE with a workloadSelector: write resolution: STATIC (the selected workloads)',
    );
  }
  if (spec.has('addresses')) {
    spec.report(
      'CH0205',
      'addresses',
      'with resolution NONE a connection goes to the address the application dialled within these addresses, which ' +
        'an explicit-mode sidecar never sees (the application dials the sidecar); give the destinations as endpoints ' +
        'with resolution: STATIC, or drop addresses to have the sidecar resolve the host (NONE, DNS)',
    );
    spec.raw('addresses');
  }
}

/** addresses with STATIC or DNS: an explicit-mode sidecar listens where its Sidecar egress says, not on a VIP. */
function rejectAddresses(spec: MapReader): void {
  if (!spec.has('addresses')) return;
  spec.report(
    'CH0205',
    'addresses',
    'a VIP or CIDR is where a captured (iptables) sidecar intercepts connections; an explicit-mode sidecar listens ' +
      'where its Sidecar egress listener binds: drop addresses and give the Sidecar egress port a bind address',
  );
  spec.raw('addresses');
}
