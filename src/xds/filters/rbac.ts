/**
 * Stage: xds. AuthorizationPolicy -> Envoy RBAC (HTTP filter on HTTP listeners, network filter on TCP ones).
 * Evaluation as in Istio: DENY policies first, then ALLOW; when no ALLOW policy applies the Mesh default decides
 * (DENY: an ALLOW filter with no policy, which denies everything). AUDIT policies become a LOG filter.
 *
 * Every Envoy policy is named `<namespace>/<name>/rules[<i>]`, so Envoy's response code details
 * (`rbac_access_denied_matched_policy[...]`) and access logs name the rule that decided.
 */
import type { AuthzPolicyIR, InboundSecurityIR, ListenerIR } from '../../ir/types.js';
import type { AuthzCondition, AuthzOperation, AuthzRule, AuthzSource, Match } from '../../policy/security-types.js';
import { anyType } from '../type-urls.js';
import type { HttpFilterPlugin } from './index.js';

type Obj = Record<string, unknown>;

const JWT_FILTER = 'envoy.filters.http.jwt_authn';
/** Where the JWT filter puts the verified token's payload (see jwt-authn.ts). */
export const JWT_PAYLOAD_KEY = 'payload';

/** Istio's string forms: exact, `prefix*`, `*suffix`, and `*` (any non-empty value). */
export function stringMatch(v: string, ignoreCase = false): Obj {
  const ic = ignoreCase ? { ignore_case: true } : {};
  if (v === '*') return { safe_regex: { regex: '.+' } };
  if (v.endsWith('*')) return { prefix: v.slice(0, -1), ...ic };
  if (v.startsWith('*')) return { suffix: v.slice(1), ...ic };
  return { exact: v, ...ic };
}

const any = { any: true };
const orIds = (ids: Obj[]): Obj => (ids.length === 1 ? ids[0] : { or_ids: { ids } });
const andIds = (ids: Obj[]): Obj => (ids.length === 0 ? any : ids.length === 1 ? ids[0] : { and_ids: { ids } });
const orRules = (rules: Obj[]): Obj => (rules.length === 1 ? rules[0] : { or_rules: { rules } });
const andRules = (rules: Obj[]): Obj => (rules.length === 0 ? any : rules.length === 1 ? rules[0] : { and_rules: { rules } });

function matchOf<T extends Obj>(m: Match, one: (v: string) => T, or: (xs: T[]) => Obj, neg: (x: Obj) => Obj): Obj[] {
  const out: Obj[] = [];
  if (m.values) out.push(or(m.values.map(one)));
  if (m.not) out.push(neg(or(m.not.map(one))));
  return out;
}

const notId = (x: Obj): Obj => ({ not_id: x });
const notRule = (x: Obj): Obj => ({ not_rule: x });

function cidr(v: string): Obj {
  const [address, len] = v.split('/');
  return { address_prefix: address, prefix_len: len === undefined ? 32 : Number(len) };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Istio principals are written without the scheme: `cluster.local/ns/shop/sa/frontend`. */
function principal(v: string): Obj {
  if (v === '*') return { authenticated: {} };
  return { authenticated: { principal_name: stringMatch(v.startsWith('*') ? v : `spiffe://${v}`) } };
}

function namespace(v: string): Obj {
  if (v === '*') return { authenticated: {} };
  const ns = v.endsWith('*') ? `${escapeRegex(v.slice(0, -1))}[^/]*` : v.startsWith('*') ? `[^/]*${escapeRegex(v.slice(1))}` : escapeRegex(v);
  return { authenticated: { principal_name: { safe_regex: { regex: `spiffe://[^/]+/ns/${ns}/sa/[^/]+` } } } };
}

function jwtClaim(path: string[], value: string, list = false): Obj {
  const metaPath = [JWT_PAYLOAD_KEY, ...path].map((key) => ({ key }));
  const sm = stringMatch(value);
  const scalar = { metadata: { filter: JWT_FILTER, path: metaPath, value: { string_match: sm } } };
  if (!list) return scalar;
  // A claim may be a string or a list of strings (`aud`, `groups`): match either.
  return { or_ids: { ids: [scalar, { metadata: { filter: JWT_FILTER, path: metaPath, value: { list_match: { one_of: { string_match: sm } } } } }] } };
}

/** `iss/sub`, `iss/*`, or `*` (any verified token). */
function requestPrincipal(v: string): Obj {
  if (v === '*') return { metadata: { filter: JWT_FILTER, path: [{ key: JWT_PAYLOAD_KEY }, { key: 'iss' }], value: { present_match: true } } };
  const slash = v.lastIndexOf('/');
  const iss = slash >= 0 ? v.slice(0, slash) : v;
  const sub = slash >= 0 ? v.slice(slash + 1) : '*';
  return andIds([jwtClaim(['iss'], iss), ...(sub === '*' ? [] : [jwtClaim(['sub'], sub)])]);
}

function sourcePrincipal(s: AuthzSource, l4: boolean): Obj {
  return andIds([
    ...matchOf(s.principals, principal, orIds, notId),
    ...matchOf(s.namespaces, namespace, orIds, notId),
    ...matchOf(s.ipBlocks, (v) => ({ direct_remote_ip: cidr(v) }), orIds, notId),
    ...matchOf(s.remoteIpBlocks, (v) => ({ remote_ip: cidr(v) }), orIds, notId),
    ...(l4 ? [] : matchOf(s.requestPrincipals, requestPrincipal, orIds, notId)),
  ]);
}

function operationPermission(o: AuthzOperation, l4: boolean): Obj {
  return andRules([
    ...matchOf(o.ports, (v) => ({ destination_port: Number(v) }), orRules, notRule),
    ...(l4
      ? []
      : [
          ...matchOf(o.hosts, (v) => ({ header: { name: ':authority', string_match: stringMatch(v, true) } }), orRules, notRule),
          ...matchOf(o.methods, (v) => ({ header: { name: ':method', string_match: { exact: v } } }), orRules, notRule),
          ...matchOf(o.paths, (v) => ({ url_path: { path: stringMatch(v) } }), orRules, notRule),
        ]),
  ]);
}

/** A `when` condition lands on the principal side (who) or the permission side (what). */
function condition(c: AuthzCondition, l4: boolean): { principal?: Obj; permission?: Obj } | undefined {
  const m: Match = { ...(c.values ? { values: c.values } : {}), ...(c.notValues ? { not: c.notValues } : {}) };
  const header = /^request\.headers\[(.+)\]$/.exec(c.key);
  const claim = /^request\.auth\.claims((?:\[[^\]]+\])+)$/.exec(c.key);
  const p = (one: (v: string) => Obj) => ({ principal: andIds(matchOf(m, one, orIds, notId)) });
  const r = (one: (v: string) => Obj) => ({ permission: andRules(matchOf(m, one, orRules, notRule)) });
  if (c.key === 'source.ip') return p((v) => ({ direct_remote_ip: cidr(v) }));
  if (c.key === 'remote.ip') return p((v) => ({ remote_ip: cidr(v) }));
  if (c.key === 'source.principal') return p(principal);
  if (c.key === 'source.namespace') return p(namespace);
  if (c.key === 'destination.port') return r((v) => ({ destination_port: Number(v) }));
  if (l4) return undefined; // HTTP-only conditions do not apply to TCP
  if (c.key === 'connection.sni') return r((v) => ({ requested_server_name: stringMatch(v) }));
  if (header) return r((v) => ({ header: { name: header[1].toLowerCase(), string_match: stringMatch(v) } }));
  if (c.key === 'request.auth.principal') return p(requestPrincipal);
  if (c.key === 'request.auth.audiences') return p((v) => jwtClaim(['aud'], v, true));
  if (c.key === 'request.auth.presenter') return p((v) => jwtClaim(['azp'], v));
  if (claim) {
    const path = [...claim[1].matchAll(/\[([^\]]+)\]/g)].map((x) => x[1]);
    return p((v) => jwtClaim(path, v, true));
  }
  return undefined;
}

const HTTP_ONLY = (r: AuthzRule): boolean =>
  r.to.some((o) => o.hosts.values || o.hosts.not || o.methods.values || o.methods.not || o.paths.values || o.paths.not) ||
  r.from.some((s) => s.requestPrincipals.values || s.requestPrincipals.not) ||
  r.when.some((c) => !['source.ip', 'remote.ip', 'source.principal', 'source.namespace', 'destination.port'].includes(c.key));

function rulePolicy(rule: AuthzRule, l4: boolean): Obj {
  const conds = rule.when.map((c) => condition(c, l4)).filter((x) => x !== undefined);
  const from = rule.from.length > 0 ? orIds(rule.from.map((s) => sourcePrincipal(s, l4))) : any;
  const to = rule.to.length > 0 ? orRules(rule.to.map((o) => operationPermission(o, l4))) : any;
  return {
    permissions: [andRules([to, ...conds.flatMap((c) => (c.permission ? [c.permission] : []))].filter((x) => x !== any))],
    principals: [andIds([from, ...conds.flatMap((c) => (c.principal ? [c.principal] : []))].filter((x) => x !== any))],
  };
}

function policiesOf(list: AuthzPolicyIR[], l4: boolean, action: AuthzPolicyIR['action']): Record<string, Obj> {
  const out: Record<string, Obj> = {};
  for (const p of list) {
    p.rules.forEach((rule, i) => {
      // On TCP, an ALLOW rule that needs HTTP attributes can never match (Istio drops it); a DENY rule is applied
      // with its HTTP-only parts ignored, which denies more, never less.
      if (l4 && action === 'ALLOW' && HTTP_ONLY(rule)) return;
      out[`${p.name}/rules[${i}]`] = rulePolicy(rule, l4);
    });
  }
  return out;
}

/** The RBAC configs of a listener, in evaluation order: DENY, AUDIT (LOG), ALLOW. */
export function rbacConfigs(sec: InboundSecurityIR, l4: boolean): { action: string; policies: Record<string, Obj> }[] {
  const by = (a: AuthzPolicyIR['action']) => sec.policies.filter((p) => p.action === a);
  const out: { action: string; policies: Record<string, Obj> }[] = [];
  const deny = policiesOf(by('DENY'), l4, 'DENY');
  if (Object.keys(deny).length > 0) out.push({ action: 'DENY', policies: deny });
  const audit = policiesOf(by('AUDIT'), l4, 'AUDIT');
  if (Object.keys(audit).length > 0) out.push({ action: 'LOG', policies: audit });
  const allowPolicies = by('ALLOW');
  if (allowPolicies.length > 0 || sec.defaultAction === 'DENY') out.push({ action: 'ALLOW', policies: policiesOf(allowPolicies, l4, 'ALLOW') });
  return out;
}

export const rbacFilter: HttpFilterPlugin = {
  name: 'envoy.filters.http.rbac',
  build(l: ListenerIR) {
    if (!l.security || !l.http) return undefined;
    return rbacConfigs(l.security, false).map((rules) => ({
      name: 'envoy.filters.http.rbac',
      typed_config: { '@type': anyType('envoy.extensions.filters.http.rbac.v3.RBAC'), rules },
    }));
  },
};

/** Network RBAC filters for TCP inbound listeners (placed before tcp_proxy). */
export function networkRbacFilters(l: ListenerIR): object[] {
  if (!l.security || l.http) return [];
  return rbacConfigs(l.security, true).map((rules) => ({
    name: 'envoy.filters.network.rbac',
    typed_config: { '@type': anyType('envoy.extensions.filters.network.rbac.v3.RBAC'), stat_prefix: `inbound_${l.port}_`, rules },
  }));
}
