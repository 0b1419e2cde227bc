/**
 * Stage: decode. `security.istio.io` AuthorizationPolicy: ALLOW / DENY / AUDIT / CUSTOM rules over sources,
 * operations and conditions, with Istio's field names, `notX` negations and validation rules. Every field of
 * Istio's reference is read here; what Chancery cannot honour is rejected (CH0205), never ignored.
 * The meaning of each field is written once, in ir/authz.ts.
 */
import type { Origin } from '../../diag/diagnostic.js';
import type { MapReader } from '../reader.js';
import type {
  AuthorizationPolicySpec,
  AuthzCondition,
  AuthzOperation,
  AuthzRule,
  AuthzSource,
  Match,
} from '../security-types.js';
import { readLabelSelector } from './common.js';
import type { DecodeMeta } from './index.js';

/** Condition keys Chancery compiles (Istio's "Authorization Policy Conditions"). */
export const CONDITION_KEYS = [
  'request.headers[...]',
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'source.serviceAccount',
  'source.trustDomain',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'request.auth.claims[...]',
  'destination.ip',
  'destination.port',
  'connection.sni',
];

const PLAIN_KEYS = new Set(CONDITION_KEYS.filter((k) => !k.endsWith('[...]')));

export function isConditionKey(key: string): boolean {
  if (/^request\.headers\[[^\]]+\]$/.test(key)) return true;
  if (/^request\.auth\.claims(\[[^\]]+\])+$/.test(key)) return true;
  return PLAIN_KEYS.has(key);
}

/** RFC 9110 token characters, without `%` (Envoy's header formatter reads it as a command). */
const HEADER_NAME = /^[!#$&'*+\-.^`|~0-9A-Za-z_]+$/;

/** Why a `request.headers[name]` key can never see a value, or undefined. */
function headerKeyProblem(key: string): string | undefined {
  const name = /^request\.headers\[(.+)\]$/.exec(key)?.[1];
  if (name === undefined) return undefined;
  if (!HEADER_NAME.test(name)) return `"${name}" is not a valid HTTP header name`;
  if (name.includes('_'))
    return `"${name}": sidecars drop request headers whose names hold "_" (README), so this condition never sees one`;
  return undefined;
}

/** `istio.io/dry-run`: the policy is evaluated and logged (Envoy shadow rules) but decides nothing. */
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

type Check = (v: string) => string | undefined;

function match(r: MapReader, key: string, notKey: string, check?: Check): Match {
  const out: Match = {};
  for (const [k, slot] of [
    [key, 'values'],
    [notKey, 'not'],
  ] as const) {
    const list = r.strList(k, { nonEmpty: true });
    if (!list) continue;
    list.forEach((v, i) => {
      const problem = v.value === '' ? 'empty values are not allowed' : check?.(v.value);
      if (problem)
        r.ctx.diags.report('CH0204', `${r.sub(k)}[${i}]: ${problem}`, {
          location: v.at,
          path: `${r.sub(k)}[${i}]`,
          object: r.ctx.object,
        });
    });
    out[slot] = list.map((v) => v.value);
  }
  return out;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*$/;
export const checkCidr: Check = (v) => {
  const [addr, len, extra] = v.split('/');
  const v6 = IPV6.test(addr) && !IPV4.test(addr);
  if (extra !== undefined || (!IPV4.test(addr) && !v6)) return `"${v}" is not an IP address or CIDR range`;
  if (len !== undefined && (!/^\d+$/.test(len) || Number(len) > (v6 ? 128 : 32))) return `"${v}": bad prefix length`;
  return undefined;
};
const checkPort: Check = (v) => (/^\d+$/.test(v) && Number(v) <= 65535 ? undefined : `"${v}" is not a port number`);

/** Istio's string forms: `*` may only start or end a value (or be the whole value). */
const checkStringForm: Check = (v) =>
  v.length > 1 && v.slice(1, -1).includes('*') ? `"${v}": "*" may only start or end a value` : undefined;

/** Paths: Istio's string forms, or a template of `{*}` (one segment) and `{**}` (the rest, last). */
export const checkPath: Check = (v) => {
  const template = v.includes('{*}') || v.includes('{**}');
  if (!template)
    return v.includes('{') || v.includes('}') ? `"${v}": "{" and "}" only in {*} and {**}` : checkStringForm(v);
  if (!v.startsWith('/')) return `"${v}": a path template must start with "/"`;
  const segments = v.replace(/^\/+|\/+$/g, '').split('/');
  let seenAny = false;
  for (const s of segments) {
    if (seenAny) return `"${v}": {**} must be the last operator`;
    if (s === '{**}') seenAny = true;
    else if (s === '{*}') continue;
    else if (/[{}*]/.test(s)) return `"${v}": a template segment is {*}, {**} or literal text`;
    else if (!/^[A-Za-z0-9\-._~!$&'()+,;=:@%]+$/.test(s)) return `"${v}": segment "${s}" is not a valid path literal`;
  }
  return undefined;
};

const checkServiceAccount: Check = (v) => {
  if (v.includes('*')) return 'wildcards are not allowed in serviceAccounts';
  const parts = v.split('/');
  if (parts.length > 2 || parts.some((p) => p === ''))
    return `"${v}": expected "serviceAccount" or "namespace/serviceAccount"`;
  return v.length > 320 ? 'at most 320 characters' : undefined;
};
const checkTrustDomain: Check = (v) => (v.includes('/') ? `"${v}": a trust domain has no "/"` : checkStringForm(v));

function readSource(r: MapReader): AuthzSource {
  const s: AuthzSource = {
    principals: match(r, 'principals', 'notPrincipals', checkStringForm),
    requestPrincipals: match(r, 'requestPrincipals', 'notRequestPrincipals', checkStringForm),
    namespaces: match(r, 'namespaces', 'notNamespaces'),
    serviceAccounts: match(r, 'serviceAccounts', 'notServiceAccounts', checkServiceAccount),
    trustDomains: match(r, 'trustDomains', 'notTrustDomains', checkTrustDomain),
    ipBlocks: match(r, 'ipBlocks', 'notIpBlocks', checkCidr),
    remoteIpBlocks: match(r, 'remoteIpBlocks', 'notRemoteIpBlocks', checkCidr),
  };
  const sa = s.serviceAccounts.values || s.serviceAccounts.not;
  if (sa && (s.principals.values || s.principals.not || s.namespaces.values || s.namespaces.not)) {
    r.report(
      'CH0204',
      r.has('serviceAccounts') ? 'serviceAccounts' : 'notServiceAccounts',
      'cannot be set with principals or namespaces',
    );
  }
  if (Object.values(s).every((m: Match) => !m.values && !m.not))
    r.report('CH0203', undefined, 'a source must not be empty');
  r.done();
  return s;
}

function readOperation(r: MapReader): AuthzOperation {
  const o: AuthzOperation = {
    hosts: match(r, 'hosts', 'notHosts', checkStringForm),
    ports: match(r, 'ports', 'notPorts', checkPort),
    methods: match(r, 'methods', 'notMethods', checkStringForm),
    paths: match(r, 'paths', 'notPaths', checkPath),
  };
  if (Object.values(o).every((m: Match) => !m.values && !m.not))
    r.report('CH0203', undefined, 'an operation must not be empty');
  r.done();
  return o;
}

/** The check for a condition key's values (Istio's ValidateAttribute). */
function conditionCheck(key: string): Check | undefined {
  if (key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip') return checkCidr;
  if (key === 'destination.port') return checkPort;
  if (key === 'source.serviceAccount') return checkServiceAccount;
  if (key === 'source.trustDomain') return checkTrustDomain;
  return checkStringForm;
}

function readCondition(w: MapReader): AuthzCondition | undefined {
  const key = w.str('key', { required: true });
  const values = w.strList('values', { nonEmpty: true });
  const notValues = w.strList('notValues', { nonEmpty: true });
  if (key !== undefined && key.startsWith('experimental.envoy.filters.')) {
    w.report('CH0205', 'key', `"${key}" (Envoy metadata conditions) is not supported by Chancery`);
  } else if (key !== undefined && !isConditionKey(key)) {
    w.report('CH0204', 'key', `"${key}" is not a supported condition key (${CONDITION_KEYS.join(', ')})`);
  } else if (key !== undefined) {
    const problem = headerKeyProblem(key);
    if (problem) w.report('CH0204', 'key', problem);
  }
  if (!values && !notValues) w.report('CH0203', 'values', 'a condition needs values or notValues');
  const check = key !== undefined ? conditionCheck(key) : undefined;
  for (const [k, list] of [
    ['values', values],
    ['notValues', notValues],
  ] as const) {
    list?.forEach((v, i) => {
      const problem = v.value === '' ? 'empty values are not allowed' : check?.(v.value);
      if (problem)
        w.ctx.diags.report('CH0204', `${w.sub(k)}[${i}]: ${problem}`, {
          location: v.at,
          path: `${w.sub(k)}[${i}]`,
          object: w.ctx.object,
        });
    });
  }
  w.done();
  if (key === undefined) return undefined;
  return {
    key,
    at: w.at,
    ...(values ? { values: values.map((v) => v.value) } : {}),
    ...(notValues ? { notValues: notValues.map((v) => v.value) } : {}),
  };
}

function readRule(rr: MapReader): AuthzRule {
  const from = (rr.maps('from') ?? []).flatMap((f) => {
    const src = f.map('source', { required: true });
    f.done();
    return src ? [readSource(src)] : [];
  });
  const to = (rr.maps('to') ?? []).flatMap((t) => {
    const op = t.map('operation', { required: true });
    t.done();
    return op ? [readOperation(op)] : [];
  });
  const when = (rr.maps('when') ?? []).flatMap((w) => readCondition(w) ?? []);
  rr.done();
  return { from, to, when, at: rr.at };
}

/** Istio: CUSTOM rules select the requests the provider decides; identity-based sources are not allowed there. */
function checkCustomRules(spec: MapReader, rules: AuthzRule[]): void {
  const banned: (keyof AuthzSource)[] = ['principals', 'namespaces', 'serviceAccounts', 'trustDomains'];
  rules.forEach((rule, i) => {
    for (const s of rule.from) {
      for (const k of banned) {
        if (s[k].values || s[k].not)
          spec.report('CH0204', `rules[${i}].from`, `${k} cannot be used with action CUSTOM`);
      }
    }
  });
}

export function decodeAuthorizationPolicy(
  spec: MapReader | undefined,
  meta?: DecodeMeta,
  at?: Record<string, Origin>,
): AuthorizationPolicySpec {
  const dryRun = readDryRun(meta);
  if (!spec) return { action: 'ALLOW', rules: [], dryRun };
  const selector = readLabelSelector(spec, 'selector', 'matchLabels');
  const action = (spec.str('action', { oneOf: ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] }) ??
    'ALLOW') as AuthorizationPolicySpec['action'];
  const rules = (spec.maps('rules') ?? []).map(readRule);
  const providerMap = spec.map('provider');
  const provider = providerMap?.str('name', { required: true });
  // Where model checks point at the provider reference.
  if (providerMap && at) at['spec.provider'] = providerMap.has('name') ? providerMap.loc('name') : providerMap.at;
  providerMap?.done();
  if (action === 'CUSTOM') {
    if (!providerMap) spec.report('CH0203', 'provider', 'action CUSTOM needs provider.name (a Mesh extensionProvider)');
    if (dryRun) meta?.report('CH0204', DRY_RUN_ANNOTATION, 'dry-run is not supported for action CUSTOM (as in Istio)');
    checkCustomRules(spec, rules);
  } else if (providerMap) {
    spec.report('CH0204', 'provider', 'is only allowed with action CUSTOM');
  }
  spec.unsupported(['targetRef', 'targetRefs'], 'is not supported by Chancery (Kubernetes Gateway API); use selector');
  spec.done();
  return { action, rules, dryRun, ...(selector ? { selector } : {}), ...(provider !== undefined ? { provider } : {}) };
}

/** Istio parses the annotation with Go's strconv.ParseBool; anything else is an error here, never "enforced". */
function readDryRun(meta: DecodeMeta | undefined): boolean {
  const v = meta?.annotations[DRY_RUN_ANNOTATION];
  if (v === undefined) return false;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  meta!.report('CH0204', DRY_RUN_ANNOTATION, `"${v}" is not true or false`);
  return false;
}
