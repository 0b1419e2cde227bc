/**
 * Stage: model. The MeshModel: every policy object resolved and cross-checked, Envoy-free, shared by all proxies.
 * Collections are sorted so that everything derived from the model is deterministic.
 */
import type { Origin } from '../diag/diagnostic.js';
import type { MeshSpec, Protocol, ServicePort, SidecarSpec } from '../policy/types.js';
import type { SecurityPolicies } from './security.js';

export interface ServiceEndpoint {
  address: string;
  /** Port per service port name, from WorkloadEntry.ports (falls back to targetPort or the service port). */
  ports: Record<string, number>;
  labels: Record<string, string>;
  serviceAccount: string;
  locality?: string;
  weight?: number;
  /** `namespace/name` of the WorkloadEntry, when the endpoint is one. */
  workload?: string;
  origin: Origin;
}

export interface Service {
  host: string;
  /** Namespace and name of the ServiceEntry that declares it. */
  namespace: string;
  name: string;
  ports: ServicePort[];
  location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  resolution: 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'NONE' | 'DYNAMIC_DNS';
  /** ServiceEntry addresses: where the application dials it, so where a sidecar listens for it (explicit mode). */
  addresses: string[];
  /** ServiceEntry subjectAltNames: accepted server names besides the endpoints' identities (or, originating, SNI). */
  subjectAltNames: string[];
  endpoints: ServiceEndpoint[];
  origin: Origin;
}

export interface Workload {
  /** `namespace/name`: also the Envoy node id of its sidecar. */
  id: string;
  namespace: string;
  name: string;
  address: string;
  labels: Record<string, string>;
  ports: Record<string, number>;
  serviceAccount: string;
  /** SPIFFE id: spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>. */
  identity: string;
  /** Hosts of the services whose workloadSelector selects this workload. */
  services: string[];
  /** WorkloadEntry.locality (`region/zone/subzone`) and weight, given to its service endpoints. */
  locality?: string;
  weight?: number;
  /** Set when the workload registered itself into a WorkloadGroup (not committed). */
  registered?: { group: string };
  /** The Sidecar that applies, if any. */
  sidecar?: { ref: string; spec: SidecarSpec; origin: Origin };
  origin: Origin;
}

export interface MeshModel {
  revision: string;
  mesh: MeshSpec;
  meshOrigin?: Origin;
  /** Sorted by host. */
  services: Service[];
  /** Sorted by id; committed and registered ones. */
  workloads: Workload[];
  /** WorkloadGroups, sorted by id. */
  groups: import('./groups.js').Group[];
  /** Every namespace that holds an object, sorted. */
  namespaces: string[];
  security: SecurityPolicies;
  telemetry: import('../policy/types.js').Telemetry[];
  routing: import('./routing.js').Routing;
  gateways: import('./gateways.js').GatewayModel;
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** The service account of the control plane itself, in the root namespace: reserved, no workload may run as it. */
export const CONTROL_PLANE_SERVICE_ACCOUNT = 'chancery';

/** The control plane's own identity, in the xDS server certificate that bootstraps verify. */
export function controlPlaneIdentity(trustDomain: string, rootNamespace: string): string {
  return spiffeId(trustDomain, rootNamespace, CONTROL_PLANE_SERVICE_ACCOUNT);
}

export function endpointPort(service: Service, port: ServicePort, ep: ServiceEndpoint): number {
  return ep.ports[port.name] ?? port.targetPort ?? port.number;
}

export function labelsMatch(selector: Record<string, string>, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

export type { Protocol };
