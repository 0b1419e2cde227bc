/**
 * Stage: decode. `networking.istio.io` ServiceEntry: the service registry.
 */
import type { Origin } from '../../diag/diagnostic.js';
import type { MapReader } from '../reader.js';
import type { EndpointSpec, ServiceEntrySpec } from '../types.js';
import { DNS_NAME, readLabelSelector, readServicePort } from './common.js';
import { checkDynamicDns, checkPassThrough, hostProblem, readAddresses } from './service-entry-resolution.js';
import { readEndpoint } from './workload-entry.js';

export function decodeServiceEntry(
  spec: MapReader | undefined,
  at: Record<string, Origin>,
): ServiceEntrySpec | undefined {
  if (!spec) return undefined;
  const read = spec.str('resolution', { oneOf: ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'] }) as
    ServiceEntrySpec['resolution'] | undefined;
  const hosts = (spec.strList('hosts', { required: true, nonEmpty: true }) ?? []).filter((h, i) => {
    at[`spec.hosts[${i}]`] = h.at;
    const report = (code: 'CH0204' | 'CH0205', why: string) =>
      spec.ctx.diags.report(code, `spec.hosts[${i}]: ${why}`, {
        location: h.at,
        path: `spec.hosts[${i}]`,
        object: spec.ctx.object,
      });
    if (!DNS_NAME.test(h.value)) return void report('CH0204', `"${h.value}" is not a valid host name`);
    const problem = hostProblem(h.value, read);
    if (problem) return void report(problem.code, problem.why);
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
  const resolution = read ?? (known ? 'STATIC' : 'NONE');
  if (resolution === 'NONE') checkPassThrough(spec, endpoints.length > 0, !!workloadSelector);
  if (resolution === 'DYNAMIC_DNS') checkDynamicDns(spec, ports, endpoints.length > 0, !!workloadSelector, at);
  const addresses =
    resolution === 'NONE' || resolution === 'DYNAMIC_DNS' ? [] : readAddresses(spec, hosts.length, ports, at);
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
