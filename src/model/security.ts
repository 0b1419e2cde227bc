/**
 * Stage: model. Which security policies apply to which workload, Istio's way: a policy in the root namespace
 * without selector applies mesh-wide, one in a namespace without selector to the whole namespace, one with a
 * selector to the workloads it selects in its namespace. Resolves each workload's effective mTLS mode per port.
 */
import type { Diagnostics, Origin } from '../diag/diagnostic.js';
import type {
  AuthorizationPolicySpec,
  MtlsSetting,
  PeerAuthenticationSpec,
  RequestAuthenticationSpec,
} from '../policy/security-types.js';
import {
  objectRef,
  type AuthorizationPolicy,
  type MtlsMode,
  type PeerAuthentication,
  type PolicyObject,
  type RequestAuthentication,
} from '../policy/types.js';
import { selectByLabels } from './index.js';
import { labelsMatch, type MeshModel, type Workload } from './mesh-model.js';
import { track } from './tracking.js';
import { groupSelected } from './groups.js';

export interface Scoped<S> {
  namespace: string;
  name: string;
  spec: S;
  origin: Origin;
  at: Record<string, Origin>;
}

export interface SecurityPolicies {
  peerAuthentications: Scoped<PeerAuthenticationSpec>[];
  authorizationPolicies: Scoped<AuthorizationPolicySpec>[];
  requestAuthentications: Scoped<RequestAuthenticationSpec>[];
}

const scopedOf = new WeakMap<object, Scoped<unknown>>();

/** The model's view of a policy object; the same object for as long as the policy's text is unchanged. */
export function scoped<S>(o: {
  meta: { namespace: string; name: string };
  spec: S;
  origin: Origin;
  at: Record<string, Origin>;
}): Scoped<S> {
  let v = scopedOf.get(o) as Scoped<S> | undefined;
  if (!v)
    scopedOf.set(o, (v = { namespace: o.meta.namespace, name: o.meta.name, spec: o.spec, origin: o.origin, at: o.at }));
  return v;
}

export function collectSecurity(objects: readonly PolicyObject[]): SecurityPolicies {
  return {
    peerAuthentications: objects.filter((o): o is PeerAuthentication => o.kind === 'PeerAuthentication').map(scoped),
    authorizationPolicies: objects
      .filter((o): o is AuthorizationPolicy => o.kind === 'AuthorizationPolicy')
      .map(scoped),
    requestAuthentications: objects
      .filter((o): o is RequestAuthentication => o.kind === 'RequestAuthentication')
      .map(scoped),
  };
}

/**
 * AuthorizationPolicies or RequestAuthentications that apply to a workload, sorted by namespace and name. Istio
 * searches the workload's namespace and the root namespace, and attaches a policy without selector or whose
 * selector's labels the workload has: a root-namespace policy with a selector applies in every namespace.
 */
export function applicable<S extends { selector?: Record<string, string> }>(
  list: readonly Scoped<S>[],
  w: Workload,
  rootNamespace: string,
): Scoped<S>[] {
  const ix = policyIndex(list);
  const namespaces = w.namespace === rootNamespace ? [rootNamespace] : [rootNamespace, w.namespace];
  const candidates = namespaces.flatMap((ns) => [
    ...(ix.get(`${ns}\0`) ?? []),
    ...Object.entries(w.labels).flatMap(([k, v]) => ix.get(`${ns}\0${k}=${v}`) ?? []),
  ]);
  return [...new Set(candidates)]
    .filter((p) => !p.spec.selector || labelsMatch(p.spec.selector, w.labels))
    .sort((a, b) => (a.namespace === b.namespace ? (a.name < b.name ? -1 : 1) : a.namespace < b.namespace ? -1 : 1));
}

const policyIndexes = new WeakMap<readonly unknown[], Map<string, Scoped<never>[]>>();

/**
 * Policies by `namespace\0` (no selector) or `namespace\0label=value` (the first label of the selector), computed
 * once per list (a model's lists are immutable), so finding a workload's policies does not scan them all.
 */
function policyIndex<S extends { selector?: Record<string, string> }>(
  list: readonly Scoped<S>[],
): Map<string, Scoped<S>[]> {
  let ix = policyIndexes.get(list) as Map<string, Scoped<S>[]> | undefined;
  if (!ix) {
    ix = new Map();
    for (const p of list) {
      const first = Object.entries(p.spec.selector ?? {}).sort()[0];
      const key = first ? `${p.namespace}\0${first[0]}=${first[1]}` : `${p.namespace}\0`;
      const l = ix.get(key);
      if (l) l.push(p);
      else ix.set(key, [p]);
    }
    policyIndexes.set(list, ix as Map<string, Scoped<never>[]>);
  }
  return ix;
}

/**
 * Effective mTLS mode of a workload's port: the most specific setting that is not UNSET wins — selector policy's
 * port-level, then its mode, then the namespace policy, then the root-namespace policy, then the Mesh default.
 */
export function mtlsModeFor(model: MeshModel, w: Workload, port: number): MtlsMode {
  track(`mtls:${w.id}`);
  const root = model.mesh.rootNamespace;
  const pas = model.security.peerAuthentications;
  const withSelector = pas.filter(
    (p) => p.spec.selector && p.namespace === w.namespace && labelsMatch(p.spec.selector, w.labels),
  );
  const nsWide = pas.filter((p) => !p.spec.selector && p.namespace === w.namespace);
  const meshWide = pas.filter((p) => !p.spec.selector && p.namespace === root);
  const candidates: MtlsSetting[] = [
    ...withSelector.flatMap((p) => [p.spec.portLevel[port] ?? 'UNSET', p.spec.mode]),
    ...nsWide.map((p) => p.spec.mode),
    ...meshWide.map((p) => p.spec.mode),
  ];
  const found = candidates.find((m) => m !== 'UNSET');
  return (found as MtlsMode | undefined) ?? model.mesh.mtlsMode;
}

export function checkSecurity(model: MeshModel, diags: Diagnostics): void {
  const root = model.mesh.rootNamespace;
  const lists: [string, Scoped<{ selector?: Record<string, string> }>[]][] = [
    ['PeerAuthentication', model.security.peerAuthentications],
    ['AuthorizationPolicy', model.security.authorizationPolicies],
    ['RequestAuthentication', model.security.requestAuthentications],
  ];
  for (const [kind, list] of lists) {
    for (const p of list) {
      const object = objectRef(kind, p);
      // A root-namespace AuthorizationPolicy or RequestAuthentication selects in every namespace (see applicable).
      const everywhere = p.namespace === root && kind !== 'PeerAuthentication';
      const where = everywhere ? model.namespaces : [p.namespace];
      const selects = (ns: string) =>
        selectByLabels(model.workloads, ns, p.spec.selector!).length > 0 ||
        groupSelected(model.groups, ns, p.spec.selector!);
      if (p.spec.selector && !where.some(selects)) {
        const scope = everywhere
          ? 'any namespace (a root-namespace policy selects mesh-wide)'
          : `namespace ${p.namespace}`;
        diags.report('CH0303', `selector matches no WorkloadEntry in ${scope}`, { location: p.origin, object });
      }
    }
    // Istio allows one namespace-wide (and one mesh-wide) PeerAuthentication; more is ambiguous.
    if (kind === 'PeerAuthentication') {
      const seen = new Map<string, Scoped<unknown>>();
      for (const p of list.filter((x) => !x.spec.selector)) {
        const prev = seen.get(p.namespace);
        if (prev) {
          const which = `namespace ${p.namespace}${p.namespace === root ? ' (the root namespace: mesh-wide)' : ''}`;
          diags.report('CH0403', `${which} already has a PeerAuthentication without selector`, {
            location: p.origin,
            object: objectRef(kind, p),
            related: [{ message: 'the other one', location: prev.origin }],
          });
        }
        seen.set(p.namespace, p);
      }
    }
  }
}
