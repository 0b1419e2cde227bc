/**
 * Stage: decode. What a ServiceEntry's `resolution`, `addresses` and wildcard hosts can mean in explicit mode,
 * where the application dials its sidecar rather than the destination: Istio's meaning where Envoy can honour it,
 * and otherwise a rejection that says what to write instead. The model and IR act on what is accepted here.
 */
import { isIP } from 'node:net';
import type { Origin } from '../../diag/diagnostic.js';
import type { MapReader } from '../reader.js';
import { isHttpProtocol, type ServiceEntrySpec, type ServicePort } from '../types.js';

/**
 * A host this resolution cannot serve. A wildcard needs DYNAMIC_DNS (Istio's dynamic forward proxy: the sidecar
 * resolves each name as requested); DNS cannot resolve a wildcard and NONE would need the dialled address.
 * DYNAMIC_DNS needs wildcards (Istio's rule).
 */
export function hostProblem(
  host: string,
  resolution: ServiceEntrySpec['resolution'] | undefined,
): { code: 'CH0204' | 'CH0205'; why: string } | undefined {
  const wildcard = host.startsWith('*');
  if (resolution === 'DYNAMIC_DNS') {
    if (wildcard) return undefined;
    return {
      code: 'CH0204',
      why: 'DYNAMIC_DNS takes wildcard hosts (*.example.com); for one name use resolution: DNS',
    };
  }
  if (!wildcard) return undefined;
  const why =
    'a wildcard host cannot be resolved by DNS, and resolution NONE would need the address the application ' +
    'dialled, which an explicit-mode sidecar never sees: use resolution: DYNAMIC_DNS (HTTP ports), or list each ' +
    'host the application uses with resolution: DNS';
  return { code: 'CH0205', why };
}

/**
 * resolution DYNAMIC_DNS (Istio): the sidecar resolves the name each request asks for (the Host header) through
 * Envoy's dynamic forward proxy. No endpoints, selector or addresses (Istio rejects them too); HTTP ports only here
 * (Istio also routes TLS by SNI, which is not supported yet).
 */
export function checkDynamicDns(
  spec: MapReader,
  ports: readonly ServicePort[],
  endpoints: boolean,
  selector: boolean,
  origins: Record<string, Origin>,
): void {
  const none = 'cannot be set with resolution DYNAMIC_DNS: each name is resolved as it is requested';
  if (endpoints) spec.report('CH0204', 'endpoints', none);
  if (selector) spec.report('CH0204', 'workloadSelector', none);
  if (spec.has('addresses')) {
    spec.report('CH0204', 'addresses', none);
    spec.raw('addresses');
  }
  ports.forEach((p, i) => {
    if (isHttpProtocol(p.protocol)) return;
    const why =
      p.protocol === 'TLS' || p.protocol === 'HTTPS'
        ? `${p.protocol} through a dynamic forward proxy (routing by SNI) is not supported yet; give the port ` +
          'protocol HTTP and originate TLS with a DestinationRule per host (resolution: DNS)'
        : `${p.protocol} carries no name to resolve: DYNAMIC_DNS takes HTTP, HTTP2 and GRPC ports`;
    const path = `spec.ports[${i}].protocol`;
    const code = p.protocol === 'TLS' || p.protocol === 'HTTPS' ? 'CH0205' : 'CH0204';
    const location = origins[`spec.ports[${i}]`] ?? spec.at;
    spec.ctx.diags.report(code, `${path}: ${why}`, { location, path, object: spec.ctx.object });
  });
}

/**
 * resolution NONE: Istio passes the connection through to the address the application dialled. An explicit-mode
 * application dials its sidecar, so that address is known only when it is the host's own: the sidecar resolves the
 * host name itself (a DNS cluster), reaching what the application would have. VIPs, CIDRs and endpoints cannot
 * be honoured that way and are rejected, saying what to write instead.
 */
export function checkPassThrough(spec: MapReader, endpoints: boolean, selector: boolean): void {
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
export function readAddresses(
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
