/**
 * Stage: explain (Envoy-free). Evaluates AuthorizationPolicies against one request exactly as the compiled Envoy
 * RBAC filters do (xds/filters/rbac.ts): DENY policies first, then ALLOW, AUDIT never decides, and with no ALLOW
 * policy the Mesh default. Istio's string forms (exact, `prefix*`, `*suffix`, `*`) and `notX` negations.
 * On TCP listeners (l4), ALLOW rules that need HTTP attributes never match (rbac.ts drops them) and DENY rules
 * apply with their HTTP-only parts ignored. Keep the two in step: test/e2e/explain.test.ts checks this against
 * real Envoy sidecars for a matrix of callers, paths, methods, headers and tokens.
 */
import type { Origin } from '../diag/diagnostic.js';
import type { AuthzPolicyIR, InboundSecurityIR } from '../ir/types.js';
import type { AuthzCondition, AuthzOperation, AuthzRule, AuthzSource, Match } from '../policy/security-types.js';

export interface RequestFacts {
  /** The caller's SPIFFE id when it came over mTLS. */
  principal?: string;
  /** Direct peer address (`source.ip`, `ipBlocks`: Envoy's direct_remote_ip). */
  sourceIp: string;
  /** The client address after X-Forwarded-For (`remote.ip`, `remoteIpBlocks`: Envoy's remote_ip); sourceIp when absent. */
  remoteIp?: string;
  host: string;
  port: number;
  method: string;
  /** Path without the query string (what Envoy's url_path matcher sees). */
  path: string;
  /** Lower-case header names. */
  headers: Record<string, string>;
  /** Claims of a verified JWT, if the request carries one. */
  jwt?: Record<string, unknown>;
  sni?: string;
}

export interface RuleMatch {
  policy: string;
  action: AuthzPolicyIR['action'];
  rule: number;
  /** The Envoy RBAC policy name that appears in access logs. */
  name: string;
  at: Origin;
}

export interface AuthzDecision {
  allowed: boolean;
  /** The rule that decided, or undefined when the mesh default (or "no ALLOW rule matched") decided. */
  decidedBy?: RuleMatch;
  reason: string;
  /** Every rule that matched, in evaluation order (DENY, AUDIT, ALLOW). */
  matched: RuleMatch[];
}

/** Istio string forms; `*` alone means "any non-empty value". */
export function stringMatches(pattern: string, value: string | undefined, ignoreCase = false): boolean {
  if (value === undefined) return false;
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  if (p === '*') return v.length > 0;
  if (p.endsWith('*')) return v.startsWith(p.slice(0, -1));
  if (p.startsWith('*')) return v.endsWith(p.slice(1));
  return v === p;
}

function field(m: Match, test: (pattern: string) => boolean): boolean {
  if (m.values && !m.values.some(test)) return false;
  if (m.not && m.not.some(test)) return false;
  return true;
}

function inCidr(cidr: string, ip: string): boolean {
  const [base, lenS] = cidr.split('/');
  const len = lenS === undefined ? 32 : Number(lenS);
  const toInt = (a: string) => a.split('.').reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
  const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
  return ((toInt(base) & mask) >>> 0) === ((toInt(ip.replace(/^::ffff:/, '')) & mask) >>> 0);
}

function principalMatches(v: string, principal: string | undefined): boolean {
  if (principal === undefined) return false;
  if (v === '*') return true;
  return stringMatches(v.startsWith('*') ? v : `spiffe://${v}`, principal);
}

function namespaceOf(principal: string | undefined): string | undefined {
  return principal ? /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(principal)?.[1] : undefined;
}

function claim(jwt: Record<string, unknown> | undefined, path: string[]): unknown {
  let v: unknown = jwt;
  for (const k of path) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/** A claim matches as a string; `list` claims (rbac.ts's or_ids of string and list matchers) also as a list. */
function claimMatches(jwt: Record<string, unknown> | undefined, path: string[], pattern: string, list = false): boolean {
  const v = claim(jwt, path);
  if (list && Array.isArray(v)) return v.some((x) => typeof x === 'string' && stringMatches(pattern, x));
  return typeof v === 'string' && stringMatches(pattern, v);
}

function requestPrincipalMatches(v: string, jwt: Record<string, unknown> | undefined): boolean {
  if (!jwt || jwt.iss === undefined) return false;
  if (v === '*') return true; // rbac.ts: present_match on the payload's iss
  const slash = v.lastIndexOf('/');
  const iss = slash >= 0 ? v.slice(0, slash) : v;
  const sub = slash >= 0 ? v.slice(slash + 1) : '*';
  return typeof jwt.iss === 'string' && stringMatches(iss, jwt.iss) && (sub === '*' || claimMatches(jwt, ['sub'], sub));
}

function sourceMatches(s: AuthzSource, r: RequestFacts, l4: boolean): boolean {
  return (
    field(s.principals, (v) => principalMatches(v, r.principal)) &&
    field(s.namespaces, (v) => r.principal !== undefined && (v === '*' || stringMatches(v, namespaceOf(r.principal)))) &&
    field(s.ipBlocks, (v) => inCidr(v, r.sourceIp)) &&
    field(s.remoteIpBlocks, (v) => inCidr(v, r.remoteIp ?? r.sourceIp)) &&
    (l4 || field(s.requestPrincipals, (v) => requestPrincipalMatches(v, r.jwt)))
  );
}

function operationMatches(o: AuthzOperation, r: RequestFacts, l4: boolean): boolean {
  return (
    field(o.ports, (v) => Number(v) === r.port) &&
    (l4 ||
      (field(o.hosts, (v) => stringMatches(v, r.host, true)) &&
        field(o.methods, (v) => v === r.method) &&
        field(o.paths, (v) => stringMatches(v, r.path))))
  );
}

function conditionMatches(c: AuthzCondition, r: RequestFacts, l4: boolean): boolean {
  const header = /^request\.headers\[(.+)\]$/.exec(c.key);
  const claimKey = /^request\.auth\.claims((?:\[[^\]]+\])+)$/.exec(c.key);
  let test: ((v: string) => boolean) | undefined;
  if (c.key === 'source.ip') test = (v) => inCidr(v, r.sourceIp);
  else if (c.key === 'remote.ip') test = (v) => inCidr(v, r.remoteIp ?? r.sourceIp);
  else if (c.key === 'source.principal') test = (v) => principalMatches(v, r.principal);
  else if (c.key === 'source.namespace') test = (v) => r.principal !== undefined && stringMatches(v, namespaceOf(r.principal));
  else if (c.key === 'destination.port') test = (v) => Number(v) === r.port;
  else if (l4) return true; // HTTP-only conditions do not exist on TCP (see rbac.ts)
  else if (c.key === 'connection.sni') test = (v) => stringMatches(v, r.sni);
  else if (header) test = (v) => stringMatches(v, r.headers[header[1].toLowerCase()]);
  else if (c.key === 'request.auth.principal') test = (v) => requestPrincipalMatches(v, r.jwt);
  else if (c.key === 'request.auth.audiences') test = (v) => claimMatches(r.jwt, ['aud'], v, true);
  else if (c.key === 'request.auth.presenter') test = (v) => claimMatches(r.jwt, ['azp'], v);
  else if (claimKey) {
    const path = [...claimKey[1].matchAll(/\[([^\]]+)\]/g)].map((x) => x[1]);
    test = (v) => claimMatches(r.jwt, path, v, true);
  }
  // rbac.ts compiles no matcher for a key it does not know, which leaves the rule without that condition (the
  // decoder rejects such keys, so this is only a guard).
  if (!test) return true;
  return field({ ...(c.values ? { values: c.values } : {}), ...(c.notValues ? { not: c.notValues } : {}) }, test);
}

/** A rule that needs HTTP attributes (rbac.ts's HTTP_ONLY): as an ALLOW rule on TCP it is dropped. */
export function needsHttp(r: AuthzRule): boolean {
  return (
    r.to.some((o) => o.hosts.values || o.hosts.not || o.methods.values || o.methods.not || o.paths.values || o.paths.not) ||
    r.from.some((s) => s.requestPrincipals.values || s.requestPrincipals.not) ||
    r.when.some((c) => !L4_CONDITIONS.includes(c.key))
  );
}

const L4_CONDITIONS = ['source.ip', 'remote.ip', 'source.principal', 'source.namespace', 'destination.port'];

export function ruleMatches(rule: AuthzRule, r: RequestFacts, l4 = false): boolean {
  const from = rule.from.length === 0 || rule.from.some((s) => sourceMatches(s, r, l4));
  const to = rule.to.length === 0 || rule.to.some((o) => operationMatches(o, r, l4));
  return from && to && rule.when.every((c) => conditionMatches(c, r, l4));
}

export function evaluate(sec: InboundSecurityIR, r: RequestFacts, l4 = false): AuthzDecision {
  const matched: RuleMatch[] = [];
  const byAction = (a: AuthzPolicyIR['action']) => sec.policies.filter((p) => p.action === a);
  const matchesOf = (list: AuthzPolicyIR[]) =>
    list.flatMap((p) =>
      p.rules.flatMap((rule, i) => ((!l4 || p.action !== 'ALLOW' || !needsHttp(rule)) && ruleMatches(rule, r, l4) ? [{ policy: p.name, action: p.action, rule: i, name: `${p.name}/rules[${i}]`, at: rule.at }] : [])),
    );
  const deny = matchesOf(byAction('DENY'));
  const audit = matchesOf(byAction('AUDIT'));
  const allowPolicies = byAction('ALLOW');
  const allow = matchesOf(allowPolicies);
  matched.push(...deny, ...audit, ...allow);
  if (deny.length > 0) return { allowed: false, decidedBy: deny[0], reason: `denied by ${deny[0].name}`, matched };
  if (allowPolicies.length > 0) {
    if (allow.length > 0) return { allowed: true, decidedBy: allow[0], reason: `allowed by ${allow[0].name}`, matched };
    return { allowed: false, reason: 'no rule of the ALLOW policies that apply matches (rbac_access_denied_matched_policy[none])', matched };
  }
  return sec.defaultAction === 'DENY'
    ? { allowed: false, reason: 'no ALLOW policy applies to this workload: the mesh default DENY decides', matched }
    : { allowed: true, reason: 'no ALLOW policy applies to this workload: the mesh default ALLOW decides', matched };
}
