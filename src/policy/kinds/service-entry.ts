/**
 * Stage: decode. `networking.istio.io` ServiceEntry: the service registry.
 */
import type { Origin } from '../../diag/diagnostic.js';
import type { MapReader } from '../reader.js';
import { isIP } from 'node:net';
import { isHttpProtocol, type EndpointSpec, type ServiceEntrySpec, type ServicePort } from '../types.js';
import { DNS_NAME, readLabelSelector, readServicePort } from './common.js';
import { readEndpoint } from './workload-entry.js';

export function decodeServiceEntry(
  spec: MapReader | undefined,
  at: Record<string, Origin>,
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
  const read = spec.str('resolution', { oneOf: ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'] });
  if (read === 'DYNAMIC_DNS') {
    const why =
      'DYNAMIC_DNS (a dynamic forward proxy resolving each wildcard name as requested) is not supported yet; ' +
      'list each host the application uses with resolution: DNS';
    spec.report('CH0205', 'resolution', why);
  }
  const given = (read === 'DYNAMIC_DNS' ? 'DNS' : read) as ServiceEntrySpec['resolution'] | undefined;
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
  const addresses = resolution === 'NONE' ? [] : readAddresses(spec, hosts.length, ports, at);
  if (spec.has('workloadSelector')) at['spec.workloadSelector'] = spec.loc('workloadSelector');
  // Istio: the names the server's certificate may carry (mesh mTLS and, when the DestinationRule names none, TLS
  // origination).
  const subjectAltNames = (spec.strList('subjectAltNames') ?? []).map((x) => x.value);
  spec.unsupported(['exportTo']);
  spec.done();
  return {
    hosts: hosts.map((h) => h.value),
    ports,
    location,
    resolution,
    endpoints,
    addresses,
    subjectAltNames,
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

/** An IP address, or a CIDR that covers one address (`/32`, `/128`): what a listener can bind to. */
function oneAddress(v: string): string | 'range' | undefined {
  const [ip, prefix, ...rest] = v.split('/');
  const family = isIP(ip);
  if (family === 0 || rest.length > 0) return undefined;
  if (prefix === undefined) return ip;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128)) return undefined;
  return Number(prefix) === (family === 4 ? 32 : 128) ? ip : 'range';
}

/**
 * addresses with STATIC or DNS. A captured (iptables) sidecar intercepts connections to these addresses; an
 * explicit-mode application dials them itself, so the sidecar listens there: a Sidecar egress TCP listener for the
 * service binds to its address (unless it says `bind`), and on HTTP listeners the address routes like the host. So
 * an address stands for one service and one listening address; a range cannot be listened on.
 */
function readAddresses(
  spec: MapReader,
  hosts: number,
  ports: readonly ServicePort[],
  origins: Record<string, Origin>,
): string[] {
  const list = spec.strList('addresses') ?? [];
  const out: string[] = [];
  list.forEach((a, i) => {
    const one = oneAddress(a.value);
    const path = `spec.addresses[${i}]`;
    const at = { location: a.at, path, object: spec.ctx.object };
    if (one === undefined) spec.ctx.diags.report('CH0204', `${path}: "${a.value}" is not an IP address or CIDR`, at);
    else if (one === 'range') {
      const why =
        'a CIDR is a range of addresses a captured sidecar intercepts; an explicit-mode sidecar listens on one ' +
        'address: give one address, or list the destinations as endpoints (resolution: STATIC)';
      spec.ctx.diags.report('CH0205', `${path}: ${why}`, at);
    } else {
      origins[`spec.addresses[${out.length}]`] = a.at; // indexed as in the result, for the model's checks
      out.push(one);
    }
  });
  if (out.length === 0) return [];
  if (hosts > 1) {
    spec.report(
      'CH0205',
      'addresses',
      'an address stands for one service: give one host per ServiceEntry with addresses',
    );
    return [];
  }
  if (out.length > 1 && ports.some((p) => !isHttpProtocol(p.protocol))) {
    spec.report('CH0205', 'addresses', 'a TCP port is one listener on one address in explicit mode: give one address');
    return [];
  }
  return out;
}
