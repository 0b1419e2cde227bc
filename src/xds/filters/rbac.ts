/**
 * Stage: xds. Authorization policies -> Envoy RBAC (HTTP filter on HTTP listeners, network filter on TCP ones).
 * The meaning of every rule was decided once, in ir/authz.ts; this module only serialises its predicate trees.
 *
 * Evaluation order as in Istio: DENY, then AUDIT (Envoy LOG), then ALLOW (CUSTOM runs before all of them, see
 * ext-authz.ts). When no enforced ALLOW policy applies the Mesh default decides (DENY: an ALLOW filter with no
 * policy, which denies everything). Dry-run policies become `shadow_rules` of the filter of their action: Envoy
 * evaluates them and records the result in dynamic metadata (and the access log), and enforces nothing.
 *
 * Every Envoy policy is named `<namespace>/<name>/rules[<i>]`, so Envoy's response code details
 * (`rbac_access_denied_matched_policy[...]`) and access logs name the rule that decided.
 */
import type { AuthzRuleIR, CidrIR, HeaderMatchIR, PermissionLeaf, PrincipalLeaf, StringMatcherIR, Tree } from '../../ir/authz.js';
import type { AuthzPolicyIR, InboundSecurityIR, ListenerIR } from '../../ir/types.js';
import { anyType } from '../type-urls.js';
import type { HttpFilterPlugin } from './index.js';

type Obj = Record<string, unknown>;

export const RBAC_HTTP_FILTER = 'envoy.filters.http.rbac';
export const RBAC_NETWORK_FILTER = 'envoy.filters.network.rbac';
const JWT_FILTER = 'envoy.filters.http.jwt_authn';
/** Where the JWT filter puts the verified token's payload (see jwt-authn.ts). */
export const JWT_PAYLOAD_KEY = 'payload';
/** Istio's prefixes for dry-run results, so the metadata keys and stats are the ones Istio users know. */
export const DRY_RUN_PREFIX = { ALLOW: 'istio_dry_run_allow_', DENY: 'istio_dry_run_deny_' } as const;

export function stringMatcher(m: StringMatcherIR): Obj {
  if ('regex' in m) return { safe_regex: { regex: m.regex } };
  const ic = m.ignoreCase ? { ignore_case: true } : {};
  if ('exact' in m) return { exact: m.exact, ...ic };
  if ('prefix' in m) return { prefix: m.prefix, ...ic };
  return { suffix: m.suffix, ...ic };
}

const cidr = (c: CidrIR): Obj => ({ address_prefix: c.address, prefix_len: c.prefixLen });

function headerMatcher(h: HeaderMatchIR): Obj {
  return 'present' in h ? { name: h.name, present_match: true } : { name: h.name, string_match: stringMatcher(h.match) };
}

function principalLeaf(l: PrincipalLeaf): Obj {
  switch (l.kind) {
    case 'peer':
      return { authenticated: { principal_name: stringMatcher(l.match) } };
    case 'sourceIp':
      return { direct_remote_ip: cidr(l.cidr) };
    case 'remoteIp':
      return { remote_ip: cidr(l.cidr) };
    case 'header':
      return { header: headerMatcher(l.header) };
    case 'claim': {
      const path = [JWT_PAYLOAD_KEY, ...l.path].map((key) => ({ key }));
      const one = { string_match: stringMatcher(l.match) };
      // A claim may be a string or a list of strings (`aud`, `groups`): match either.
      const value = l.list ? { or_match: { value_matchers: [{ list_match: { one_of: one } }, one] } } : one;
      return { metadata: { filter: JWT_FILTER, path, value } };
    }
  }
}

function permissionLeaf(l: PermissionLeaf): Obj {
  switch (l.kind) {
    case 'header':
      return { header: headerMatcher(l.header) };
    case 'path':
      return { url_path: { path: stringMatcher(l.match) } };
    case 'pathTemplate':
      return {
        uri_template: {
          name: 'uri-template',
          typed_config: {
            '@type': anyType('envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig'),
            path_template: l.template,
          },
        },
      };
    case 'destinationIp':
      return { destination_ip: cidr(l.cidr) };
    case 'destinationPort':
      return { destination_port: l.port };
    case 'sni':
      return { requested_server_name: stringMatcher(l.match) };
  }
}

/** Envoy's Principal and Permission share one shape with different field names. */
const PRINCIPAL = { and: 'and_ids', or: 'or_ids', not: 'not_id', set: 'ids', leaf: principalLeaf } as const;
const PERMISSION = { and: 'and_rules', or: 'or_rules', not: 'not_rule', set: 'rules', leaf: permissionLeaf } as const;

function tree<L>(t: Tree<L>, k: { and: string; or: string; not: string; set: string; leaf: (l: L) => Obj }): Obj {
  switch (t.op) {
    case 'any':
      return { any: true };
    case 'leaf':
      return k.leaf(t.leaf);
    case 'not':
      return { [k.not]: tree(t.of, k) };
    default:
      return { [k[t.op]]: { [k.set]: t.of.map((x) => tree(x, k)) } };
  }
}

export function rbacPolicy(r: AuthzRuleIR): Obj {
  return { permissions: [tree(r.permission, PERMISSION)], principals: [tree(r.principal, PRINCIPAL)] };
}

function policiesOf(list: AuthzPolicyIR[]): Record<string, Obj> {
  return Object.fromEntries(list.flatMap((p) => p.rules.map((r) => [r.name, rbacPolicy(r)])));
}

/** One RBAC filter config: enforced rules and/or dry-run shadow rules of one action. */
export interface RbacConfig {
  rules?: { action: string; policies: Record<string, Obj> };
  shadow_rules?: { action: string; policies: Record<string, Obj> };
  shadow_rules_stat_prefix?: string;
}

/** The RBAC configs of a listener, in evaluation order: DENY, AUDIT (LOG), ALLOW. */
export function rbacConfigs(sec: InboundSecurityIR): RbacConfig[] {
  const out: RbacConfig[] = [];
  const of = (a: AuthzPolicyIR['action'], dryRun: boolean) => sec.policies.filter((p) => p.action === a && p.dryRun === dryRun);
  for (const [action, envoyAction] of [['DENY', 'DENY'], ['AUDIT', 'LOG'], ['ALLOW', 'ALLOW']] as const) {
    const enforced = of(action, false);
    const shadow = of(action, true);
    // An ALLOW filter exists whenever an ALLOW policy applies or the mesh default is DENY (no policy: deny all).
    const enforce = action === 'ALLOW' ? enforced.length > 0 || sec.defaultAction === 'DENY' : enforced.length > 0;
    if (!enforce && shadow.length === 0) continue;
    const c: RbacConfig = {};
    if (enforce) c.rules = { action: envoyAction, policies: policiesOf(enforced) };
    if (shadow.length > 0) {
      c.shadow_rules = { action: envoyAction, policies: policiesOf(shadow) };
      if (action !== 'AUDIT') c.shadow_rules_stat_prefix = DRY_RUN_PREFIX[action];
    }
    out.push(c);
  }
  return out;
}

export const rbacFilter: HttpFilterPlugin = {
  name: RBAC_HTTP_FILTER,
  build(l: ListenerIR) {
    if (!l.security || !l.http) return undefined;
    return rbacConfigs(l.security).map((c) => ({
      name: RBAC_HTTP_FILTER,
      typed_config: { '@type': anyType('envoy.extensions.filters.http.rbac.v3.RBAC'), ...c },
    }));
  },
};

/** Network RBAC filters for TCP inbound listeners (placed before tcp_proxy). */
export function networkRbacFilters(l: ListenerIR): object[] {
  if (!l.security || l.http) return [];
  return rbacConfigs(l.security).map((c) => ({
    name: RBAC_NETWORK_FILTER,
    typed_config: { '@type': anyType('envoy.extensions.filters.network.rbac.v3.RBAC'), stat_prefix: `inbound_${l.port}_`, ...c },
  }));
}
