/**
 * Stage: ir. The security of a workload's inbound listener (mTLS mode, authorization policies, JWT providers) and
 * the client-side mTLS of its outbound clusters, from the MeshModel. Envoy-free.
 */
import { applicable, mtlsModeFor, type Scoped } from '../model/security.js';
import type { AuthorizationPolicySpec } from '../policy/security-types.js';
import { workloadById } from '../model/index.js';
import { track } from '../model/tracking.js';
import type { MeshModel, Service, Workload } from '../model/mesh-model.js';
import { endpointPort } from '../model/mesh-model.js';
import { lowerRule } from './authz.js';
import type { AuthzPolicyIR, ExtAuthzIR, InboundSecurityIR } from './types.js';
import { customProviderFor, extAuthzService } from '../model/ext-authz.js';

export function inboundSecurity(model: MeshModel, w: Workload, port: number, l4: boolean): InboundSecurityIR {
  return { mtls: mtlsModeFor(model, w, port), ...policiesFor(model, w, l4) };
}

/**
 * A gateway's own authorization and JWT checks (AuthorizationPolicy and RequestAuthentication selecting the gateway
 * workload, as in Istio), lowered for HTTP or (`l4`) for TCP chains. PeerAuthentication does not apply: a
 * gateway's downstream TLS is its servers'.
 */
export function gatewaySecurity(model: MeshModel, w: Workload, l4 = false): InboundSecurityIR {
  return { mtls: 'DISABLE', ...policiesFor(model, w, l4) };
}

function policiesFor(model: MeshModel, w: Workload, l4: boolean): Omit<InboundSecurityIR, 'mtls'> {
  track(`authz:${w.id}`);
  track(`reqauthn:${w.id}`);
  const root = model.mesh.rootNamespace;
  const trustDomains = [model.mesh.trustDomain, ...model.mesh.trustDomainAliases];
  return {
    trustDomain: model.mesh.trustDomain,
    trustDomainAliases: model.mesh.trustDomainAliases,
    defaultAction: model.mesh.authorizationDefault,
    policies: applicable(model.security.authorizationPolicies, w, root).map((p) => loweredPolicy(p, trustDomains, l4)),
    ...extAuthzOf(model, w, l4),
    jwt: applicable(model.security.requestAuthentications, w, root).flatMap((p) =>
      p.spec.jwtRules.map((rule, i) => ({ name: `${p.namespace}/${p.name}/jwtRules[${i}]`, rule })),
    ),
  };
}

/** Lowered policies by policy object (the same while its text is), then by trust domains and listener kind. */
const lowered = new WeakMap<Scoped<AuthorizationPolicySpec>, Map<string, AuthzPolicyIR>>();

/** A policy lowered once (ir/authz.ts) and shared by every listener of every proxy it applies to. */
function loweredPolicy(p: Scoped<AuthorizationPolicySpec>, trustDomains: string[], l4: boolean): AuthzPolicyIR {
  let byContext = lowered.get(p);
  if (!byContext) lowered.set(p, (byContext = new Map()));
  const key = `${l4}|${trustDomains.join(',')}`;
  let ir = byContext.get(key);
  if (!ir) {
    const name = `${p.namespace}/${p.name}`;
    const ctx = { trustDomains, namespace: p.namespace, l4, action: p.spec.action };
    ir = {
      name,
      action: p.spec.action,
      dryRun: p.spec.dryRun,
      ...(p.spec.provider !== undefined ? { provider: p.spec.provider } : {}),
      rules: p.spec.rules.flatMap((r, i) => lowerRule(r, `${name}/rules[${i}]`, ctx) ?? []),
      origin: p.origin,
    };
    byContext.set(key, ir);
  }
  return ir;
}

/**
 * The ext_authz provider of a listener: the one the workload's CUSTOM policies name. On TCP only a gRPC provider
 * can decide (network ext_authz); an HTTP one is refused by model checks wherever a CUSTOM rule could select a TCP
 * port, so here it has nothing to do.
 */
function extAuthzOf(model: MeshModel, w: Workload, l4: boolean): { extAuthz?: ExtAuthzIR } {
  const provider = customProviderFor(model, w);
  if (!provider || (l4 && provider.kind !== 'extAuthzGrpc')) return {};
  const svc = extAuthzService(model, provider)!;
  const cluster = { direction: 'outbound' as const, host: svc.host, port: provider.port };
  return { extAuthz: { provider, cluster, authority: svc.host } };
}

/**
 * Client side: originate mTLS to a service whose endpoints are mesh workloads (they have sidecars) unless every one
 * of them has mTLS DISABLEd on that port. Verify the server against the SPIFFE ids the service runs as, and the
 * ServiceEntry's subjectAltNames (Istio).
 */
export function upstreamTls(model: MeshModel, svc: Service, port: number): { sans: string[] } | undefined {
  if (svc.location !== 'MESH_INTERNAL') return undefined;
  const sp = svc.ports.find((p) => p.number === port);
  if (!sp) return undefined;
  const workloads = svc.endpoints.map((e) => ({ e, w: workloadById(model, e.workload) })).filter((x) => x.w);
  if (workloads.length === 0) return undefined;
  const tlsOn = workloads.filter(({ e, w }) => mtlsModeFor(model, w!, endpointPort(svc, sp, e)) !== 'DISABLE');
  if (tlsOn.length === 0) return undefined;
  return { sans: [...new Set([...workloads.map(({ w }) => w!.identity), ...svc.subjectAltNames])].sort() };
}

/** host, port and scheme of a JWKS URL (validated when the policy was decoded). */
export function parseJwksUri(uri: string): { host: string; port: number; tls: boolean } {
  const u = new URL(uri);
  const tls = u.protocol === 'https:';
  return { host: u.hostname, port: u.port ? Number(u.port) : tls ? 443 : 80, tls };
}
