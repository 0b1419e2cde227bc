/**
 * Stage: decode. `networking.istio.io` WorkloadGroup: a class of instances (an auto-scaling group) whose members
 * register themselves when their Envoy connects with a group token (`chancery bootstrap --group`), as Istio's
 * auto-registration does. `spec.metadata` gives every instance's labels and annotations, `spec.template` the rest
 * of its WorkloadEntry (the address comes from the instance). How many may be registered at once is the object's
 * annotation `chancery.dev/max-instances`, else the Mesh's `registration.maxInstances`.
 */
import type { Origin } from '../../diag/diagnostic.js';
import type { MapReader } from '../reader.js';
import type { WorkloadGroupSpec } from '../types.js';
import { DNS_LABEL } from './common.js';
import type { DecodeMeta } from './index.js';

export const MAX_INSTANCES_ANNOTATION = 'chancery.dev/max-instances';
/** The highest instance limit accepted (per group, and as the Mesh default). */
export const MAX_INSTANCES = 100_000;

export function decodeWorkloadGroup(
  spec: MapReader | undefined,
  at: Record<string, Origin>,
  meta: DecodeMeta,
): WorkloadGroupSpec | undefined {
  if (!spec) return undefined;
  const md = spec.map('metadata');
  const metaLabels = md?.strMap('labels') ?? {};
  const annotations = md?.strMap('annotations') ?? {};
  md?.done();
  const t = spec.map('template', { required: true });
  // Registered workloads point at the template: their policy origin.
  if (t) at['spec.template'] = t.at;
  if (t?.has('serviceAccount')) at['spec.template.serviceAccount'] = t.loc('serviceAccount');
  if (t?.raw('address') !== undefined) {
    const why = 'is set by each instance when it registers (bootstrap --address, or its connection); remove it';
    t.report('CH0204', 'address', why);
  }
  const ports = t?.intMap('ports', { min: 1, max: 65535 }) ?? {};
  const templateLabels = t?.strMap('labels') ?? {};
  const serviceAccount = t?.str('serviceAccount', { pattern: DNS_LABEL, patternHint: 'a DNS label' });
  const locality = t?.str('locality');
  const weight = t?.int('weight', { min: 1, max: 128 });
  t?.unsupported(['network'], 'is not supported: Chancery meshes are one network (every instance is reached directly)');
  t?.done();
  spec.unsupported(
    ['probe'],
    "is not supported: Istio's node agent runs the probe beside Envoy and reports health, and stock Envoy cannot; " +
      'an instance is in its services while its xDS stream is connected (and for the registration grace after)',
  );
  spec.done();
  const maxInstances = readMaxInstances(meta);
  return {
    labels: { ...templateLabels, ...metaLabels },
    annotations,
    ports,
    ...(serviceAccount !== undefined ? { serviceAccount } : {}),
    ...(locality !== undefined ? { locality } : {}),
    ...(weight !== undefined ? { weight } : {}),
    ...(maxInstances !== undefined ? { maxInstances } : {}),
  };
}

function readMaxInstances(meta: DecodeMeta): number | undefined {
  const raw = meta.annotations[MAX_INSTANCES_ANNOTATION];
  if (raw === undefined) return undefined;
  const n = /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_INSTANCES)) {
    meta.report('CH0204', MAX_INSTANCES_ANNOTATION, `"${raw}" is not a whole number from 1 to ${MAX_INSTANCES}`);
    return undefined;
  }
  return n;
}
