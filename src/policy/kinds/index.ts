/**
 * Stage: decode. The explicit registry of policy kinds: which apiVersion/kind pairs Chancery accepts and the decoder
 * of each one's `spec`. Adding a kind means adding one module and one row here (no import side effects).
 */
import type { Origin } from '../../diag/diagnostic.js';
import type { MapReader } from '../reader.js';
import type { PolicyKind } from '../types.js';
import { decodeMesh } from './mesh.js';
import { decodeServiceEntry } from './service-entry.js';
import { decodeSidecar } from './sidecar.js';
import { decodeWorkloadEntry } from './workload-entry.js';
import { decodeWorkloadGroup } from './workload-group.js';
import { decodeAuthorizationPolicy } from './authorization-policy.js';
import { decodePeerAuthentication } from './peer-authentication.js';
import { decodeRequestAuthentication } from './request-authentication.js';
import { decodeTelemetry } from './telemetry.js';
import { decodeDestinationRule } from './destination-rule.js';
import { decodeRateLimitPolicy } from './rate-limit-policy.js';
import { decodeVirtualService } from './virtual-service.js';
import { decodeGateway } from './gateway.js';

export interface KindDecoder {
  kind: PolicyKind;
  /** API group; every listed version of it is accepted. */
  group: string;
  versions: readonly string[];
  /** Whether the object lives in a namespace (Mesh does not). */
  namespaced: boolean;
  /** Whether a document without `spec` is an error (CH0203); when not, the decoder gets `undefined`. */
  requiresSpec: boolean;
  decode(spec: MapReader | undefined, at: Record<string, Origin>, meta: DecodeMeta): unknown;
}

/** What a kind's decoder may read from `metadata` besides name and namespace. */
export interface DecodeMeta {
  /** The object's namespace ('' for cluster-wide kinds). */
  namespace: string;
  annotations: Record<string, string>;
  /** Where `metadata.annotations` is (or `metadata` when absent). */
  annotationsAt: Origin;
  report(code: 'CH0204', key: string, message: string): void;
}

const NETWORKING = ['v1', 'v1beta1', 'v1alpha3'];
const SECURITY = ['v1', 'v1beta1'];

export const KINDS: readonly KindDecoder[] = [
  {
    kind: 'Mesh',
    group: 'chancery.dev',
    versions: ['v1alpha1'],
    namespaced: false,
    requiresSpec: false,
    decode: (s) => decodeMesh(s),
  },
  {
    kind: 'ServiceEntry',
    group: 'networking.istio.io',
    versions: NETWORKING,
    namespaced: true,
    requiresSpec: true,
    decode: decodeServiceEntry,
  },
  {
    kind: 'WorkloadEntry',
    group: 'networking.istio.io',
    versions: NETWORKING,
    namespaced: true,
    requiresSpec: true,
    decode: decodeWorkloadEntry,
  },
  {
    kind: 'WorkloadGroup',
    group: 'networking.istio.io',
    versions: NETWORKING,
    namespaced: true,
    requiresSpec: true,
    decode: decodeWorkloadGroup,
  },
  {
    kind: 'Sidecar',
    group: 'networking.istio.io',
    versions: NETWORKING,
    namespaced: true,
    requiresSpec: true,
    decode: decodeSidecar,
  },
  {
    kind: 'PeerAuthentication',
    group: 'security.istio.io',
    versions: SECURITY,
    namespaced: true,
    requiresSpec: true,
    decode: (s) => decodePeerAuthentication(s),
  },
  {
    kind: 'AuthorizationPolicy',
    group: 'security.istio.io',
    versions: SECURITY,
    namespaced: true,
    requiresSpec: true,
    decode: (s, at, m) => decodeAuthorizationPolicy(s, m, at),
  },
  {
    kind: 'VirtualService',
    group: 'networking.istio.io',
    versions: NETWORKING,
    namespaced: true,
    requiresSpec: true,
    decode: (s) => decodeVirtualService(s),
  },
  {
    kind: 'Gateway',
    group: 'networking.istio.io',
    versions: NETWORKING,
    namespaced: true,
    requiresSpec: true,
    decode: (s, at, m) => decodeGateway(s, at, m.namespace),
  },
  {
    kind: 'DestinationRule',
    group: 'networking.istio.io',
    versions: NETWORKING,
    namespaced: true,
    requiresSpec: true,
    decode: (s) => decodeDestinationRule(s),
  },
  {
    kind: 'RateLimitPolicy',
    group: 'chancery.dev',
    versions: ['v1alpha1'],
    namespaced: true,
    requiresSpec: true,
    decode: (s) => decodeRateLimitPolicy(s),
  },
  {
    kind: 'Telemetry',
    group: 'telemetry.istio.io',
    versions: ['v1', 'v1alpha1'],
    namespaced: true,
    requiresSpec: true,
    decode: (s) => decodeTelemetry(s),
  },
  {
    kind: 'RequestAuthentication',
    group: 'security.istio.io',
    versions: SECURITY,
    namespaced: true,
    requiresSpec: true,
    decode: (s) => decodeRequestAuthentication(s),
  },
];

/** Kinds users may reasonably write that Chancery does not implement yet: a clear error, never silence. */
export const PLANNED_KINDS: Record<string, string> = {
  'networking.istio.io/EnvoyFilter': 'raw Envoy patches are not supported (they would bypass every check)',
  'networking.istio.io/ProxyConfig': 'per-proxy Envoy settings are not supported yet',
  'extensions.istio.io/WasmPlugin': 'Wasm plugins are not supported yet',
};

export function findKind(apiVersion: string, kind: string): KindDecoder | undefined {
  const slash = apiVersion.lastIndexOf('/');
  const group = apiVersion.slice(0, slash);
  const version = apiVersion.slice(slash + 1);
  return KINDS.find((k) => k.kind === kind && k.group === group && k.versions.includes(version));
}
