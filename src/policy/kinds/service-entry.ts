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
      spec.ctx.diags.report('CH0205', `spec.hosts[${i}]: wildcard hosts are not supported yet`, {
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
  const resolution = (spec.str('resolution', { oneOf: ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN'] }) ??
    'STATIC') as ServiceEntrySpec['resolution'];
  if (resolution === 'NONE')
    spec.report('CH0205', 'resolution', 'NONE (pass-through) needs transparent capture, which is not supported yet');
  const endpoints: EndpointSpec[] = [];
  for (const e of spec.maps('endpoints') ?? []) {
    const ep = readEndpoint(e);
    if (ep) endpoints.push(ep);
  }
  const workloadSelector = readLabelSelector(spec, 'workloadSelector', 'labels');
  if (workloadSelector && endpoints.length > 0)
    spec.report('CH0204', 'workloadSelector', 'cannot be combined with endpoints');
  // Istio's default resolution is NONE: pass-through to the address the application dialled, which explicit-mode
  // sidecars never see. With endpoints or a workloadSelector the endpoints are known (STATIC); without, say so.
  if (!spec.has('resolution') && !workloadSelector && endpoints.length === 0) {
    spec.report(
      'CH0203',
      'resolution',
      'is needed here: without it Istio passes connections through to the address the application dialled (NONE), ' +
        'which explicit-mode sidecars cannot do; set resolution: DNS for a host Envoy should resolve, ' +
        'or give endpoints or a workloadSelector',
    );
  }
  if (spec.has('workloadSelector')) at['spec.workloadSelector'] = spec.loc('workloadSelector');
  spec.unsupported(['addresses', 'exportTo', 'subjectAltNames']);
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
