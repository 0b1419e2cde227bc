/**
 * Stage: explain (Envoy-free). Evaluates a listener's lowered authorization (ir/authz.ts) against one request the
 * way the Envoy filters built from the same trees do (xds/filters/ext-authz.ts, rbac.ts): CUSTOM first (a request
 * its rules select goes to the external provider, whose answer policy cannot tell: it is an assumption the caller
 * may give, or else unknown), then DENY, then AUDIT (never decides), then ALLOW, and with no enforced ALLOW policy
 * the Mesh default. Dry-run policies are evaluated as
 * Envoy's shadow rules are: their would-be result is reported and decides nothing. The leaves are Envoy's
 * matchers (exact / prefix / suffix / RE2 regex on the whole value), so nothing here knows Istio's string forms.
 * test/e2e/explain.test.ts and test/e2e/authz-bypass.test.ts check it against real Envoy sidecars.
 */
import type { Origin } from '../diag/diagnostic.js';
import { uriTemplateRegex } from '../ir/authz.js';
import type {
  AuthzRuleIR,
  CidrIR,
  HeaderMatchIR,
  PermissionLeaf,
  PrincipalLeaf,
  StringMatcherIR,
  Tree,
} from '../ir/authz.js';
import type { AuthzPolicyIR, InboundSecurityIR } from '../ir/types.js';
import { re2FullMatch } from '../util/re2.js';

export interface RequestFacts {
  /** The caller's SPIFFE id when it came over mTLS. */
  principal?: string;
  /** Direct peer address (`source.ip`, `ipBlocks`: Envoy's direct_remote_ip). */
  sourceIp: string;
  /** The client address the connection manager settled on (`remote.ip`, `remoteIpBlocks`); sourceIp when absent. */
  remoteIp?: string;
  /** The address the connection was made to (`destination.ip`). */
  destinationIp?: string;
  /** `:authority` as the callee's connection manager sees it. */
  host: string;
  port: number;
  method: string;
  /** Path without the query string, after normalisation (what Envoy's url_path matcher sees). */
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

/** What a dry-run (shadow) filter of one action records: Envoy's shadow_engine_result and effective policy id. */
export interface DryRunResult {
  result: 'allowed' | 'denied';
  policy?: string;
}

/** What explain may assume the external authorizer answers. */
export type ExtAuthzAnswer = 'allow' | 'deny';

export interface AuthzDecision {
  allowed: boolean;
  /** The rule that decided, or undefined when the mesh default (or "no ALLOW rule matched") decided. */
  decidedBy?: RuleMatch;
  reason: string;
  /** Every enforced rule that matched, in evaluation order (CUSTOM, DENY, AUDIT, ALLOW). */
  matched: RuleMatch[];
  /**
   * A CUSTOM rule selected the request: `provider` is asked before DENY and ALLOW. Without an assumption, `allowed`
   * and `reason` say what follows when it allows (it may deny instead); with `assumed: 'deny'` it decided.
   */
  extAuthz?: { provider: string; selectedBy: RuleMatch; assumed?: ExtAuthzAnswer };
  /** Would-be results of dry-run policies, per action, as the access log shows them. */
  dryRun: { deny?: DryRunResult; allow?: DryRunResult };
}

/** Envoy's StringMatcher. */
export function stringMatcherMatches(m: StringMatcherIR, value: string | undefined): boolean {
  if (value === undefined) return false;
  if ('regex' in m) return re2FullMatch(m.regex, value);
  const fold = (s: string) => (m.ignoreCase ? s.toLowerCase() : s);
  const v = fold(value);
  if ('exact' in m) return v === fold(m.exact);
  if ('prefix' in m) return v.startsWith(fold(m.prefix));
  return v.endsWith(fold(m.suffix));
}

function ipBytes(ip: string): { v6: boolean; bits: bigint } | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) {
    return { v6: false, bits: ip.split('.').reduce((n, o) => (n << 8n) + BigInt(Number(o)), 0n) };
  }
  if (!ip.includes(':')) return undefined;
  const [head, tail = ''] = ip.split('::');
  const parts = (s: string) => (s === '' ? [] : s.split(':'));
  const h = parts(head);
  const t = parts(ip.includes('::') ? tail : '');
  const all = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  if (all.length !== 8) return undefined;
  return { v6: true, bits: all.reduce((n, g) => (n << 16n) + BigInt(parseInt(g, 16) || 0), 0n) };
}

/** Envoy's CidrRange: same IP version, and the first prefixLen bits agree. */
export function inCidr(c: CidrIR, ip: string | undefined): boolean {
  const a = ipBytes(c.address);
  const b = ip === undefined ? undefined : ipBytes(ip);
  if (!a || !b || a.v6 !== b.v6) return false;
  const width = a.v6 ? 128n : 32n;
  const shift = width - BigInt(c.prefixLen);
  return a.bits >> shift === b.bits >> shift;
}

function headerValue(name: string, r: RequestFacts): string | undefined {
  if (name === ':authority') return r.host;
  if (name === ':method') return r.method;
  if (name === ':path') return r.path;
  return r.headers[name];
}

function headerMatches(h: HeaderMatchIR, r: RequestFacts): boolean {
  const v = headerValue(h.name, r);
  return 'present' in h ? v !== undefined : stringMatcherMatches(h.match, v);
}

function claimValue(jwt: Record<string, unknown> | undefined, path: string[]): unknown {
  let v: unknown = jwt;
  for (const k of path)
    v = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/** One principal leaf (who sends), as Envoy's RBAC Principal evaluates it. */
export function principalLeaf(l: PrincipalLeaf, r: RequestFacts): boolean {
  switch (l.kind) {
    case 'peer':
      return r.principal !== undefined && stringMatcherMatches(l.match, r.principal);
    case 'sourceIp':
      return inCidr(l.cidr, r.sourceIp);
    case 'remoteIp':
      return inCidr(l.cidr, r.remoteIp ?? r.sourceIp);
    case 'header':
      return headerMatches(l.header, r);
    case 'claim': {
      const v = claimValue(r.jwt, l.path);
      if (l.list && Array.isArray(v)) return v.some((x) => typeof x === 'string' && stringMatcherMatches(l.match, x));
      return typeof v === 'string' && stringMatcherMatches(l.match, v);
    }
  }
}

function permissionLeaf(l: PermissionLeaf, r: RequestFacts): boolean {
  switch (l.kind) {
    case 'header':
      return headerMatches(l.header, r);
    case 'path':
      return stringMatcherMatches(l.match, r.path);
    case 'pathTemplate':
      return re2FullMatch(uriTemplateRegex(l.template), r.path);
    case 'destinationIp':
      return inCidr(l.cidr, r.destinationIp);
    case 'destinationPort':
      return l.port === r.port;
    case 'sni':
      return stringMatcherMatches(l.match, r.sni);
  }
}

function holds<L>(t: Tree<L>, leaf: (l: L) => boolean): boolean {
  switch (t.op) {
    case 'any':
      return true;
    case 'leaf':
      return leaf(t.leaf);
    case 'not':
      return !holds(t.of, leaf);
    case 'and':
      return t.of.every((x) => holds(x, leaf));
    case 'or':
      return t.of.some((x) => holds(x, leaf));
  }
}

export function ruleMatches(rule: AuthzRuleIR, r: RequestFacts): boolean {
  return holds(rule.principal, (l) => principalLeaf(l, r)) && holds(rule.permission, (l) => permissionLeaf(l, r));
}

/** Envoy keeps a filter's policies in a map ordered by name; the first that matches is the one it reports. */
function matchesOf(list: AuthzPolicyIR[], r: RequestFacts): RuleMatch[] {
  return list
    .flatMap((p) =>
      p.rules.flatMap((rule) => {
        if (!ruleMatches(rule, r)) return [];
        const index = Number(/\[(\d+)\]$/.exec(rule.name)?.[1] ?? 0);
        return [{ policy: p.name, action: p.action, rule: index, name: rule.name, at: rule.at }];
      }),
    )
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function dryRunOf(sec: InboundSecurityIR, action: 'ALLOW' | 'DENY', r: RequestFacts): DryRunResult | undefined {
  const list = sec.policies.filter((p) => p.action === action && p.dryRun);
  if (list.length === 0) return undefined;
  const hit = matchesOf(list, r)[0];
  const result = action === 'DENY' ? (hit ? 'denied' : 'allowed') : hit ? 'allowed' : 'denied';
  return { result, ...(hit ? { policy: hit.name } : {}) };
}

export function evaluate(sec: InboundSecurityIR, r: RequestFacts, extAuthz?: ExtAuthzAnswer): AuthzDecision {
  const rest = evaluateRbac(sec, r);
  // Only where the ext_authz filter exists (an HTTP provider has none on TCP listeners).
  const selectedBy = sec.extAuthz
    ? matchesOf(
        sec.policies.filter((p) => p.action === 'CUSTOM'),
        r,
      )[0]
    : undefined;
  if (!selectedBy || !sec.extAuthz) return rest;
  const provider = sec.extAuthz.provider.name;
  const x = { provider, selectedBy, ...(extAuthz ? { assumed: extAuthz } : {}) };
  const matched = [selectedBy, ...rest.matched];
  if (extAuthz === 'deny') {
    const reason = `${selectedBy.name} sends the request to ${provider}, which denies it (assumed; 403 or its status)`;
    return { ...rest, allowed: false, decidedBy: selectedBy, reason, matched, extAuthz: x };
  }
  return { ...rest, matched, extAuthz: x };
}

/** The RBAC filters after CUSTOM: DENY, AUDIT, ALLOW, then the Mesh default. */
function evaluateRbac(sec: InboundSecurityIR, r: RequestFacts): AuthzDecision {
  const enforced = (a: AuthzPolicyIR['action']) => sec.policies.filter((p) => p.action === a && !p.dryRun);
  const deny = matchesOf(enforced('DENY'), r);
  const audit = matchesOf(enforced('AUDIT'), r);
  const allowPolicies = enforced('ALLOW');
  const allow = matchesOf(allowPolicies, r);
  const matched = [...deny, ...audit, ...allow];
  const deniedDry = dryRunOf(sec, 'DENY', r);
  const allowedDry = dryRunOf(sec, 'ALLOW', r);
  const dryRun = { ...(deniedDry ? { deny: deniedDry } : {}), ...(allowedDry ? { allow: allowedDry } : {}) };
  const base = { matched, dryRun };
  if (deny.length > 0) return { ...base, allowed: false, decidedBy: deny[0], reason: `denied by ${deny[0].name}` };
  if (allowPolicies.length > 0) {
    if (allow.length > 0) return { ...base, allowed: true, decidedBy: allow[0], reason: `allowed by ${allow[0].name}` };
    return {
      ...base,
      allowed: false,
      reason: 'no rule of the ALLOW policies that apply matches (rbac_access_denied_matched_policy[none])',
    };
  }
  return sec.defaultAction === 'DENY'
    ? { ...base, allowed: false, reason: 'no ALLOW policy applies to this workload: the mesh default DENY decides' }
    : { ...base, allowed: true, reason: 'no ALLOW policy applies to this workload: the mesh default ALLOW decides' };
}
