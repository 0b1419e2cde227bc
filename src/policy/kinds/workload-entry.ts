/**
 * Stage: decode. `networking.istio.io` WorkloadEntry: one instance of a workload (and the inline endpoints of a
 * ServiceEntry, which share its shape).
 */
import type { Origin } from '../../diag/diagnostic.js';
import type { MapReader } from '../reader.js';
import type { EndpointSpec } from '../types.js';
import { DNS_LABEL, readIpAddress } from './common.js';

export function readEndpoint(r: MapReader): EndpointSpec | undefined {
  const address = readIpAddress(r, 'address', true);
  const ports = r.intMap('ports', { min: 1, max: 65535 }) ?? {};
  const labels = r.strMap('labels') ?? {};
  const serviceAccount = r.str('serviceAccount', { pattern: DNS_LABEL, patternHint: 'a DNS label' });
  const locality = r.str('locality');
  const weight = r.int('weight', { min: 1, max: 128 });
  r.unsupported(['network']);
  r.done();
  if (address === undefined) return undefined;
  return {
    address,
    ports,
    labels,
    ...(serviceAccount !== undefined ? { serviceAccount } : {}),
    ...(locality !== undefined ? { locality } : {}),
    ...(weight !== undefined ? { weight } : {}),
  };
}

export function decodeWorkloadEntry(spec: MapReader | undefined, at: Record<string, Origin>): EndpointSpec | undefined {
  if (!spec) return undefined;
  // Where the reserved-identity check (model/build.ts) points.
  if (spec.has('serviceAccount')) at['spec.serviceAccount'] = spec.loc('serviceAccount');
  return readEndpoint(spec);
}
