/**
 * Stage: model. External authorization (AuthorizationPolicy `action: CUSTOM`): which Mesh provider decides for a
 * workload, which ServiceEntry it runs behind, and the checks Istio makes (or that keep Chancery from enforcing less
 * than the policy says):
 *
 *  - a provider's `service` is a ServiceEntry host (`[<namespace>/]<host>`) with `port` among its ports, HTTP for
 *    envoyExtAuthzHttp and HTTP/2 (GRPC, HTTP2) for envoyExtAuthzGrpc;
 *  - a CUSTOM policy names an envoyExtAuthzHttp or envoyExtAuthzGrpc provider of the Mesh;
 *  - one provider per workload (Istio without PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS);
 *  - on a TCP port only a gRPC provider can decide (Envoy's network ext_authz speaks gRPC only). Istio leaves an
 *    HTTP provider's policy out there, so the authorizer is silently skipped; Chancery refuses the policy instead
 *    when one of its rules may select a TCP port of a workload it applies to.
 */
import type { Diagnostics } from '../diag/diagnostic.js';
import type { AuthorizationPolicySpec, AuthzRule, Match } from '../policy/security-types.js';
import { isExtAuthzProvider, isHttpProtocol, objectRef, type ExtAuthzProvider } from '../policy/types.js';
import { serviceByHost } from './index.js';
import type { MeshModel, Service, Workload } from './mesh-model.js';
import { applicable, type Scoped } from './security.js';
import { inboundPlans } from './sidecars.js';

type Policy = Scoped<AuthorizationPolicySpec>;

export function extAuthzProviderNamed(model: MeshModel, name: string | undefined): ExtAuthzProvider | undefined {
  const p = model.mesh.extensionProviders.find((x) => x.name === name);
  return p && isExtAuthzProvider(p) ? p : undefined;
}

/** The ServiceEntry behind a provider (`ns/host` must be in that namespace), or undefined. */
export function extAuthzService(model: MeshModel, p: ExtAuthzProvider): Service | undefined {
  const slash = p.service.indexOf('/');
  const host = p.service.slice(slash + 1);
  const svc = serviceByHost(model, host);
  return svc && (slash < 0 || svc.namespace === p.service.slice(0, slash)) ? svc : undefined;
}

/** The CUSTOM policies that apply to a workload (sorted by namespace and name). */
export function customPolicies(model: MeshModel, w: Workload): Policy[] {
  const all = applicable(model.security.authorizationPolicies, w, model.mesh.rootNamespace);
  return all.filter((p) => p.spec.action === 'CUSTOM');
}

/** The provider that decides a workload's CUSTOM rules (the checks allow one per workload). */
export function customProviderFor(model: MeshModel, w: Workload): ExtAuthzProvider | undefined {
  const first = customPolicies(model, w)[0];
  return first ? extAuthzProviderNamed(model, first.spec.provider) : undefined;
}

export function checkExtAuthz(model: MeshModel, diags: Diagnostics): void {
  for (const p of model.mesh.extensionProviders) if (isExtAuthzProvider(p)) checkProvider(model, p, diags);
  const custom = model.security.authorizationPolicies.filter((p) => p.spec.action === 'CUSTOM');
  if (custom.length === 0) return;
  for (const p of custom) checkReference(model, p, diags);
  const reported = new Set<string>();
  for (const w of model.workloads) checkWorkload(model, w, diags, reported);
}

function checkProvider(model: MeshModel, p: ExtAuthzProvider, diags: Diagnostics): void {
  const object = `Mesh extensionProviders "${p.name}"`;
  const svc = extAuthzService(model, p);
  const field = p.kind === 'extAuthzHttp' ? 'envoyExtAuthzHttp' : 'envoyExtAuthzGrpc';
  if (!svc) {
    const msg = `${field}.service: no ServiceEntry declares "${p.service}"`;
    diags.report('CH0301', msg, { location: p.serviceAt, object });
    return;
  }
  const sp = svc.ports.find((x) => x.number === p.port);
  if (!sp) {
    const ports = svc.ports.map((x) => x.number).join(', ');
    const msg = `${field}.port: ${p.port} is not a port of ${svc.host} (${ports})`;
    diags.report('CH0304', msg, { location: p.serviceAt, object });
    return;
  }
  if (p.kind === 'extAuthzGrpc' && sp.protocol !== 'GRPC' && sp.protocol !== 'HTTP2') {
    const why = `port ${p.port} of ${svc.host} is ${sp.protocol}; a gRPC authorizer needs protocol GRPC or HTTP2`;
    diags.report('CH0204', `${field}.port: ${why}`, { location: p.serviceAt, object });
  }
  if (p.kind === 'extAuthzHttp' && !isHttpProtocol(sp.protocol)) {
    const why = `port ${p.port} of ${svc.host} is TCP; an HTTP authorizer needs HTTP, HTTP2 or GRPC`;
    diags.report('CH0204', `${field}.port: ${why}`, { location: p.serviceAt, object });
  }
}

/** A CUSTOM policy names an external authorization provider of the Mesh; anything else decides nothing. */
function checkReference(model: MeshModel, p: Policy, diags: Diagnostics): void {
  if (p.spec.provider === undefined || extAuthzProviderNamed(model, p.spec.provider)) return;
  const known = model.mesh.extensionProviders.some((x) => x.name === p.spec.provider);
  const why = known
    ? 'is not an envoyExtAuthzHttp or envoyExtAuthzGrpc provider'
    : 'is not an extensionProvider of the Mesh';
  diags.report('CH0305', `provider.name: "${p.spec.provider}" ${why}`, {
    location: p.at['spec.provider'] ?? p.origin,
    object: objectRef('AuthorizationPolicy', p),
  });
}

function checkWorkload(model: MeshModel, w: Workload, diags: Diagnostics, reported: Set<string>): void {
  const policies = customPolicies(model, w);
  if (policies.length === 0) return;
  const first = policies[0];
  for (const p of policies.slice(1)) {
    const key = `${first.namespace}/${first.name}|${p.namespace}/${p.name}`;
    if (p.spec.provider === first.spec.provider || reported.has(key)) continue;
    reported.add(key);
    const msg = `workload ${w.id} would be decided by two CUSTOM providers, "${first.spec.provider}" and ` +
      `"${p.spec.provider}"; Istio allows one per workload`;
    diags.report('CH0403', msg, {
      location: p.at['spec.provider'] ?? p.origin,
      object: objectRef('AuthorizationPolicy', p),
      related: [{ message: `the other provider's policy`, location: first.at['spec.provider'] ?? first.origin }],
    });
  }
  const provider = extAuthzProviderNamed(model, first.spec.provider);
  if (provider?.kind !== 'extAuthzHttp') return;
  for (const plan of inboundPlans(w, model).filter((x) => !isHttpProtocol(x.protocol))) {
    for (const p of policies) {
      const i = p.spec.rules.findIndex((r) => mayTouchPort(r, plan.port));
      const key = `tcp|${p.namespace}/${p.name}|${plan.port}`;
      if (i < 0 || reported.has(key)) continue;
      reported.add(key);
      const msg = `provider "${provider.name}" is envoyExtAuthzHttp, which cannot check TCP connections, and ` +
        `rules[${i}] may select TCP port ${plan.port} of ${w.id} (Istio would skip the authorizer there): use an ` +
        'envoyExtAuthzGrpc provider, or limit the rule to HTTP ports with to.operation.ports';
      const object = objectRef('AuthorizationPolicy', p);
      diags.report('CH0204', msg, { location: p.at['spec.provider'] ?? p.origin, object });
    }
  }
}

/** Whether a port list (values AND NOT notValues) admits `port`. */
function admits(m: Match, port: number): boolean {
  return (!m.values || m.values.includes(String(port))) && !m.not?.includes(String(port));
}

/**
 * Whether a CUSTOM rule may select connections to `port` on a TCP listener. There its HTTP-only attributes are
 * left out (ir/authz.ts), so only the port fields can rule a port out.
 */
export function mayTouchPort(rule: AuthzRule, port: number): boolean {
  if (rule.to.length > 0 && !rule.to.some((o) => admits(o.ports, port))) return false;
  const conditions = rule.when.filter((c) => c.key === 'destination.port');
  return conditions.every((c) => admits({ values: c.values, not: c.notValues }, port));
}
