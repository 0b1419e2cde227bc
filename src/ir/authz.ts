/**
 * Stage: ir. AuthorizationPolicy lowered ONCE into Envoy-free predicate trees, with Istio's meaning (Istio's
 * "Authorization Policy" reference and its RBAC generator). Everything else only reads these trees: the RBAC
 * builder (xds/filters/rbac.ts) serialises them, explain and graph evaluate them (explain/authz.ts). So what is
 * explained is what runs, and a semantic decision is written here and nowhere else.
 *
 * A rule becomes a principal tree (who: peer identity, addresses, request headers, JWT claims) and a permission
 * tree (what: host, method, path, port, destination address, SNI), as Envoy's RBAC Policy has them. The leaves use
 * Envoy's matcher vocabulary (exact / prefix / suffix / RE2 regex, whole-value), so evaluating them needs no
 * knowledge of Istio's string forms.
 *
 * TCP listeners (l4): an ALLOW rule that needs HTTP attributes is dropped (it can never match, so the ALLOW admits
 * less); in DENY, AUDIT and CUSTOM rules the HTTP-only attributes are left out (the DENY refuses more, the CUSTOM
 * provider is asked about more connections). This is Istio's rule (its generator lowers CUSTOM as DENY).
 */
import type { Origin } from '../diag/diagnostic.js';
import type { AuthzCondition, AuthzOperation, AuthzRule, AuthzSource, Match } from '../policy/security-types.js';
import { re2Quote } from '../util/re2.js';

/** Envoy's StringMatcher: the whole value, exact / prefix / suffix, or an RE2 regex. */
export type StringMatcherIR =
  | { exact: string; ignoreCase?: boolean }
  | { prefix: string; ignoreCase?: boolean }
  | { suffix: string; ignoreCase?: boolean }
  | { regex: string };

export interface CidrIR {
  address: string;
  prefixLen: number;
}

export type HeaderMatchIR = { name: string; present: true } | { name: string; match: StringMatcherIR };

/** Attributes of who sends the request (Envoy RBAC Principal). */
export type PrincipalLeaf =
  /** The peer presented a certificate (mTLS) whose URI SAN matches. */
  | { kind: 'peer'; match: StringMatcherIR }
  | { kind: 'sourceIp'; cidr: CidrIR }
  /** The client address the connection manager settled on (see Mesh numTrustedProxies). */
  | { kind: 'remoteIp'; cidr: CidrIR }
  | { kind: 'header'; header: HeaderMatchIR }
  /** A claim of the verified JWT; `list`: a claim that is a list matches when one of its strings does. */
  | { kind: 'claim'; path: string[]; match: StringMatcherIR; list: boolean };

/** Attributes of what is asked for (Envoy RBAC Permission). */
export type PermissionLeaf =
  | { kind: 'header'; header: HeaderMatchIR }
  /** The path without query, after the connection manager normalised it. */
  | { kind: 'path'; match: StringMatcherIR }
  /** Envoy's uri_template matcher (`*` one segment, `**` the rest). */
  | { kind: 'pathTemplate'; template: string }
  | { kind: 'destinationIp'; cidr: CidrIR }
  | { kind: 'destinationPort'; port: number }
  | { kind: 'sni'; match: StringMatcherIR };

export type Tree<L> =
  | { op: 'any' }
  | { op: 'and'; of: Tree<L>[] }
  | { op: 'or'; of: Tree<L>[] }
  | { op: 'not'; of: Tree<L> }
  | { op: 'leaf'; leaf: L };

export interface AuthzRuleIR {
  /** `<namespace>/<policy>/rules[<i>]`: the Envoy RBAC policy name, so access logs name the rule. */
  name: string;
  at: Origin;
  principal: Tree<PrincipalLeaf>;
  permission: Tree<PermissionLeaf>;
}

/** What lowering needs from the mesh and the policy. */
export interface LoweringContext {
  /** The mesh's trust domain first, then its aliases. */
  trustDomains: string[];
  /** The policy's namespace (serviceAccounts without a namespace mean this one). */
  namespace: string;
  /** A TCP listener: HTTP-only attributes do not exist. */
  l4: boolean;
  action: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
}

const ANY: Tree<never> = { op: 'any' };
const leaf = <L>(l: L): Tree<L> => ({ op: 'leaf', leaf: l });
const who = (l: PrincipalLeaf): Tree<PrincipalLeaf> => leaf(l);
const what = (l: PermissionLeaf): Tree<PermissionLeaf> => leaf(l);
const and = <L>(of: Tree<L>[]): Tree<L> => (of.length === 0 ? ANY : of.length === 1 ? of[0] : { op: 'and', of });
const or = <L>(of: Tree<L>[]): Tree<L> => (of.length === 1 ? of[0] : { op: 'or', of });
const not = <L>(of: Tree<L>): Tree<L> => ({ op: 'not', of });

/** Thrown for an attribute that does not exist on this listener (HTTP-only on TCP). */
class HttpOnly extends Error {}

/** Istio's string forms: exact, `prefix*`, `*suffix`, `*` (any non-empty value). */
export function istioString(v: string, ignoreCase = false): StringMatcherIR {
  const ic = ignoreCase ? { ignoreCase: true } : {};
  if (v === '*') return { regex: '.+' };
  if (v.startsWith('*')) return { suffix: v.slice(1), ...ic };
  if (v.endsWith('*')) return { prefix: v.slice(0, -1), ...ic };
  return { exact: v, ...ic };
}

/** Istio's form with a fixed prefix (the `*` alone ignores it, as Istio's StringMatcherWithPrefix does). */
function istioStringWithPrefix(v: string, prefix: string): StringMatcherIR {
  if (v === '*') return { regex: '.+' };
  if (v.startsWith('*')) return { regex: `${re2Quote(prefix)}.*${re2Quote(v.slice(1))}` };
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1) };
  return { exact: prefix + v };
}

/**
 * The `Host`/`:authority` a `hosts` value matches: case-insensitive, and a value without a port also matches the
 * authority with any port (`api.shop.svc` matches `API.shop.svc:80`), so a port or case cannot dodge a DENY.
 * Istio matches only the literal form and tells users to add `host:*`; this is deliberately wider for DENY and for
 * ALLOW alike (an ALLOW of `api.shop.svc` admitting `api.shop.svc:80` admits the same service).
 */
export function hostMatcher(v: string): StringMatcherIR | 'present' {
  if (v === '*') return 'present';
  const withPort = /:(\d+|\*)$/.test(v);
  if (withPort) return istioString(v, true);
  if (v.endsWith('*')) return { prefix: v.slice(0, -1), ignoreCase: true };
  const port = '(:[0-9]+)?';
  if (v.startsWith('*')) return { regex: `(?i).*${re2Quote(v.slice(1))}${port}` };
  return { regex: `(?i)${re2Quote(v)}${port}` };
}

export function parseCidr(v: string): CidrIR {
  const [address, len] = v.split('/');
  const v6 = address.includes(':');
  return { address, prefixLen: len === undefined ? (v6 ? 128 : 32) : Number(len) };
}

/**
 * Principals are written without the scheme. A trust domain that is the mesh's, one of its aliases, or
 * `cluster.local` (Istio's name for "the local trust domain") stands for all of them.
 */
export function expandTrustDomain(v: string, trustDomains: string[]): string[] {
  const parts = v.split('/');
  if (parts.length !== 5 || parts[0] === '*') return [v];
  if (parts[0] !== 'cluster.local' && !trustDomains.includes(parts[0])) return [v];
  return [...new Set(trustDomains.map((td) => [td, ...parts.slice(1)].join('/')))];
}

const peer = (m: StringMatcherIR): Tree<PrincipalLeaf> => who({ kind: 'peer', match: m });

function principalValues(v: string, ctx: LoweringContext): Tree<PrincipalLeaf>[] {
  return expandTrustDomain(v, ctx.trustDomains).map((p) => peer(istioStringWithPrefix(p, 'spiffe://')));
}

/** Istio: the regex `.*` + `/ns/<namespace>/` + `.*` on the peer's SPIFFE id, `*` in the value meaning any text. */
function namespaceValue(v: string): Tree<PrincipalLeaf> {
  return peer({ regex: `.*/ns/${v.split('*').map(re2Quote).join('.*')}/.*` });
}

/** `<namespace>/<serviceAccount>` or `<serviceAccount>` (the policy's namespace); any trust domain, as Istio. */
function serviceAccountValue(v: string, ctx: LoweringContext): Tree<PrincipalLeaf> {
  const slash = v.indexOf('/');
  const [ns, sa] = slash >= 0 ? [v.slice(0, slash), v.slice(slash + 1)] : [ctx.namespace, v];
  return peer({ regex: `spiffe://.+/ns/${re2Quote(ns)}/(.+/|)sa/${re2Quote(sa)}(/.+)?` });
}

function trustDomainValues(v: string, ctx: LoweringContext): Tree<PrincipalLeaf>[] {
  const values = ctx.trustDomains.includes(v) ? ctx.trustDomains : [v];
  return values.map((td) => {
    if (td === '*') return peer({ prefix: 'spiffe://' });
    if (!td.includes('*')) return peer({ prefix: `spiffe://${td}/` });
    const [a, b] = [td.slice(0, td.indexOf('*')), td.slice(td.indexOf('*') + 1)];
    return peer({ regex: `spiffe://${re2Quote(a)}[^/]*${re2Quote(b)}/.*` });
  });
}

const claim = (path: string[], m: StringMatcherIR, list: boolean): Tree<PrincipalLeaf> =>
  who({ kind: 'claim', path, match: m, list });

/**
 * `iss/sub` split at the last `/` (issuers are URLs): both claims must match, `*` parts meaning "any non-empty";
 * a value without `/` is that issuer with an empty subject. Exactly Istio's generator.
 */
function requestPrincipalValue(v: string): Tree<PrincipalLeaf> {
  const anyValue: StringMatcherIR = { regex: '.+' };
  const idx = v.lastIndexOf('/');
  const [iss, sub] = idx >= 0 ? [v.slice(0, idx), v.slice(idx + 1)] : [v, ''];
  let mi: StringMatcherIR;
  let ms: StringMatcherIR;
  if (v === '*') [mi, ms] = [anyValue, anyValue];
  else if (v.startsWith('*')) {
    if (idx >= 0) [mi, ms] = [iss === '*' ? anyValue : { suffix: iss.slice(1) }, { exact: sub }];
    else [mi, ms] = [anyValue, { suffix: v.slice(1) }];
  } else if (v.endsWith('*')) {
    if (idx >= 0) [mi, ms] = [{ exact: iss }, sub === '*' ? anyValue : { prefix: sub.slice(0, -1) }];
    else [mi, ms] = [{ prefix: v.slice(0, -1) }, anyValue];
  } else [mi, ms] = [{ exact: iss }, { exact: sub }];
  return and([claim(['iss'], mi, false), claim(['sub'], ms, false)]);
}

function header(name: string, v: string): HeaderMatchIR {
  return v === '*' ? { name, present: true } : { name, match: istioString(v) };
}

/** Characters of one path segment in Envoy's uri_template matcher (RFC 3986 pchar, already percent-encoded). */
const SEGMENT_CHARS = "-a-zA-Z0-9._~%!$&'()+,;:@=";

/**
 * The RE2 pattern equivalent to an Envoy uri_template `path_template` with `*` (exactly one non-empty segment) and
 * `**` (the rest of the path, possibly empty; always last), matched against the whole path without its query.
 */
export function uriTemplateRegex(template: string): string {
  return template
    .split('/')
    .map((seg) => (seg === '**' ? `[${SEGMENT_CHARS}/]*` : seg === '*' ? `[${SEGMENT_CHARS}]+` : re2Quote(seg)))
    .join('/');
}

/** A path value: a template with `{*}` / `{**}`, or Istio's string forms. */
function pathValue(v: string): Tree<PermissionLeaf> {
  if (v.includes('{*}') || v.includes('{**}')) {
    return what({ kind: 'pathTemplate', template: v.replaceAll('{**}', '**').replaceAll('{*}', '*') });
  }
  return what({ kind: 'path', match: istioString(v) });
}

/** values (any of) AND NOT notValues (none of), as Istio composes every field. */
function field<L>(
  m: Match,
  one: (v: string) => Tree<L>[] | Tree<L>,
  httpOnly = false,
  ctx?: LoweringContext,
): Tree<L>[] {
  if (!m.values && !m.not) return [];
  if (httpOnly && ctx?.l4) throw new HttpOnly();
  const list = (vs: string[]) => or(vs.flatMap((v) => one(v)));
  const out: Tree<L>[] = [];
  if (m.values) out.push(list(m.values));
  if (m.not) out.push(not(list(m.not)));
  return out;
}

/** A field whose HTTP-only absence on TCP drops the ALLOW rule (rethrown) or the field alone (DENY, AUDIT). */
function guarded<L>(ctx: LoweringContext, build: () => Tree<L>[]): Tree<L>[] {
  try {
    return build();
  } catch (err) {
    if (err instanceof HttpOnly && ctx.action !== 'ALLOW') return [];
    throw err;
  }
}

function sourceTree(s: AuthzSource, ctx: LoweringContext): Tree<PrincipalLeaf>[] {
  return [
    ...field(s.principals, (v) => principalValues(v, ctx)),
    ...guarded(ctx, () => field(s.requestPrincipals, requestPrincipalValue, true, ctx)),
    ...field(s.namespaces, namespaceValue),
    ...field(s.serviceAccounts, (v) => serviceAccountValue(v, ctx)),
    ...field(s.trustDomains, (v) => trustDomainValues(v, ctx)),
    ...field(s.ipBlocks, (v) => who({ kind: 'sourceIp', cidr: parseCidr(v) })),
    ...field(s.remoteIpBlocks, (v) => who({ kind: 'remoteIp', cidr: parseCidr(v) })),
  ];
}

function operationTree(o: AuthzOperation, ctx: LoweringContext): Tree<PermissionLeaf>[] {
  const hostLeaf = (v: string): Tree<PermissionLeaf> => {
    const m = hostMatcher(v);
    return what({
      kind: 'header',
      header: m === 'present' ? { name: ':authority', present: true } : { name: ':authority', match: m },
    });
  };
  return [
    ...guarded(ctx, () => field(o.hosts, hostLeaf, true, ctx)),
    ...guarded(ctx, () => field(o.methods, (v) => what({ kind: 'header', header: header(':method', v) }), true, ctx)),
    ...guarded(ctx, () => field(o.paths, pathValue, true, ctx)),
    ...field(o.ports, (v) => what({ kind: 'destinationPort', port: Number(v) })),
  ];
}

/** Claim keys: `request.auth.claims[a][b]` -> ["a", "b"]. */
export function claimPath(key: string): string[] | undefined {
  const m = /^request\.auth\.claims((?:\[[^\]]+\])+)$/.exec(key);
  return m ? [...m[1].matchAll(/\[([^\]]+)\]/g)].map((x) => x[1]) : undefined;
}

export function headerName(key: string): string | undefined {
  return /^request\.headers\[(.+)\]$/.exec(key)?.[1].toLowerCase();
}

/** A `when` condition on the side where Envoy can evaluate it. */
function conditionTrees(
  c: AuthzCondition,
  ctx: LoweringContext,
): { principal: Tree<PrincipalLeaf>[]; permission: Tree<PermissionLeaf>[] } {
  const m: Match = { ...(c.values ? { values: c.values } : {}), ...(c.notValues ? { not: c.notValues } : {}) };
  const p = (one: (v: string) => Tree<PrincipalLeaf>[] | Tree<PrincipalLeaf>, http = false) => ({
    principal: guarded(ctx, () => field(m, one, http, ctx)),
    permission: [],
  });
  const q = (one: (v: string) => Tree<PermissionLeaf>, http = false) => ({
    principal: [],
    permission: guarded(ctx, () => field(m, one, http, ctx)),
  });
  const name = headerName(c.key);
  const path = claimPath(c.key);
  switch (c.key) {
    case 'source.ip':
      return p((v) => who({ kind: 'sourceIp', cidr: parseCidr(v) }));
    case 'remote.ip':
      return p((v) => who({ kind: 'remoteIp', cidr: parseCidr(v) }));
    case 'source.namespace':
      return p(namespaceValue);
    case 'source.principal':
      return p((v) => principalValues(v, ctx));
    case 'source.serviceAccount':
      return p((v) => serviceAccountValue(v, ctx));
    case 'source.trustDomain':
      return p((v) => trustDomainValues(v, ctx));
    case 'destination.ip':
      return q((v) => what({ kind: 'destinationIp', cidr: parseCidr(v) }));
    case 'destination.port':
      return q((v) => what({ kind: 'destinationPort', port: Number(v) }));
    case 'connection.sni':
      return q((v) => what({ kind: 'sni', match: istioString(v) }));
    case 'request.auth.principal':
      return p(requestPrincipalValue, true);
    case 'request.auth.audiences':
      return p((v) => claim(['aud'], istioString(v), true), true);
    case 'request.auth.presenter':
      return p((v) => claim(['azp'], istioString(v), true), true);
  }
  if (name !== undefined) return p((v) => who({ kind: 'header', header: header(name, v) }), true);
  if (path) return p((v) => claim(path, istioString(v), true), true);
  // The decoder accepts no other key; refusing here keeps an unknown key from silently matching everything.
  throw new Error(`internal: unknown authorization condition key ${c.key}`);
}

/**
 * One rule: (any `from` source) AND (any `to` operation) AND every `when` condition. Undefined when the rule is an
 * ALLOW rule that needs HTTP attributes on a TCP listener: it can never match there.
 */
export function lowerRule(rule: AuthzRule, name: string, ctx: LoweringContext): AuthzRuleIR | undefined {
  try {
    const conds = rule.when.map((c) => conditionTrees(c, ctx));
    const basePrincipal = conds.flatMap((c) => c.principal);
    const basePermission = conds.flatMap((c) => c.permission);
    const principal =
      rule.from.length === 0
        ? and(basePrincipal)
        : or(rule.from.map((s) => and([...sourceTree(s, ctx), ...basePrincipal])));
    const permission =
      rule.to.length === 0
        ? and(basePermission)
        : or(rule.to.map((o) => and([...operationTree(o, ctx), ...basePermission])));
    return { name, at: rule.at, principal, permission };
  } catch (err) {
    if (err instanceof HttpOnly) return undefined;
    throw err;
  }
}

/**
 * The request headers (not pseudo-headers) the rules look at. Envoy's RBAC matches a header sent more than once
 * when any one of its values matches, while the application may read another; so before authorization decides,
 * each of these is cut to its first value, and what is decided on is what the application receives.
 */
export function inspectedHeaders(rules: readonly AuthzRuleIR[]): string[] {
  const names = new Set<string>();
  const visit = (t: Tree<PrincipalLeaf | PermissionLeaf>): void => {
    if (t.op === 'leaf') {
      if (t.leaf.kind === 'header' && !t.leaf.header.name.startsWith(':')) names.add(t.leaf.header.name);
    } else if (t.op === 'not') visit(t.of);
    else if (t.op !== 'any') t.of.forEach(visit);
  };
  for (const r of rules) {
    visit(r.principal);
    visit(r.permission);
  }
  return [...names].sort();
}
