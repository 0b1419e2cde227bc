/**
 * Stage: decode. `security.istio.io` AuthorizationPolicy: ALLOW / DENY / AUDIT rules over sources, operations and
 * conditions, with Istio's field names and `notX` negations.
 */
import type { MapReader } from '../reader.js';
import type { AuthorizationPolicySpec, AuthzCondition, AuthzOperation, AuthzRule, AuthzSource, Match } from '../security-types.js';
import { readLabelSelector } from './common.js';

/** Condition keys Chancery compiles (Istio's "Authorization Policy Conditions"). */
export const CONDITION_KEYS = [
  'request.headers[...]',
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'request.auth.claims[...]',
  'destination.port',
  'connection.sni',
];

export function isConditionKey(key: string): boolean {
  if (/^request\.headers\[[^\]]+\]$/.test(key)) return true;
  if (/^request\.auth\.claims\[[^\]]+\](\[[^\]]+\])*$/.test(key)) return true;
  return ['source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter', 'destination.port', 'connection.sni'].includes(key);
}

function match(r: MapReader, key: string, notKey: string, check?: (v: string) => string | undefined): Match {
  const out: Match = {};
  for (const [k, slot] of [[key, 'values'], [notKey, 'not']] as const) {
    const list = r.strList(k, { nonEmpty: true });
    if (!list) continue;
    if (check) {
      list.forEach((v, i) => {
        const problem = check(v.value);
        if (problem) r.ctx.diags.report('CH0204', `${r.sub(k)}[${i}]: ${problem}`, { location: v.at, path: `${r.sub(k)}[${i}]`, object: r.ctx.object });
      });
    }
    out[slot] = list.map((v) => v.value);
  }
  return out;
}

const CIDR = /^(\d{1,3}(\.\d{1,3}){3})(\/(\d|[12]\d|3[0-2]))?$/;
const checkCidr = (v: string): string | undefined => (CIDR.test(v) ? undefined : `"${v}" is not an IPv4 address or CIDR`);
const checkPort = (v: string): string | undefined => (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 65535 ? undefined : `"${v}" is not a port number`);
const checkPath = (v: string): string | undefined =>
  v.includes('{') ? 'path templates ({*}, {**}) are not supported yet' : v.indexOf('*') > 0 && v.indexOf('*') < v.length - 1 ? `"${v}": "*" may only start or end a path` : undefined;

function readSource(r: MapReader): AuthzSource {
  const s: AuthzSource = {
    principals: match(r, 'principals', 'notPrincipals'),
    requestPrincipals: match(r, 'requestPrincipals', 'notRequestPrincipals'),
    namespaces: match(r, 'namespaces', 'notNamespaces'),
    ipBlocks: match(r, 'ipBlocks', 'notIpBlocks', checkCidr),
    remoteIpBlocks: match(r, 'remoteIpBlocks', 'notRemoteIpBlocks', checkCidr),
  };
  r.unsupported(['serviceAccounts', 'notServiceAccounts']);
  r.done();
  return s;
}

function readOperation(r: MapReader): AuthzOperation {
  const o: AuthzOperation = {
    hosts: match(r, 'hosts', 'notHosts'),
    ports: match(r, 'ports', 'notPorts', checkPort),
    methods: match(r, 'methods', 'notMethods'),
    paths: match(r, 'paths', 'notPaths', checkPath),
  };
  r.done();
  return o;
}

export function decodeAuthorizationPolicy(spec: MapReader | undefined): AuthorizationPolicySpec | undefined {
  if (!spec) return { action: 'ALLOW', rules: [] };
  const selector = readLabelSelector(spec, 'selector', 'matchLabels');
  const action = spec.str('action', { oneOf: ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] }) ?? 'ALLOW';
  if (action === 'CUSTOM') spec.report('CH0205', 'action', 'CUSTOM (external authorization) is not supported yet');
  const rules: AuthzRule[] = [];
  for (const rr of spec.maps('rules') ?? []) {
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
    const when: AuthzCondition[] = [];
    for (const w of rr.maps('when') ?? []) {
      const key = w.str('key', { required: true });
      const values = w.strList('values', { nonEmpty: true });
      const notValues = w.strList('notValues', { nonEmpty: true });
      if (key !== undefined && !isConditionKey(key)) w.report('CH0204', 'key', `"${key}" is not a supported condition key (${CONDITION_KEYS.join(', ')})`);
      if (!values && !notValues) w.report('CH0203', 'values', 'a condition needs values or notValues');
      w.done();
      if (key !== undefined) {
        when.push({ key, at: w.at, ...(values ? { values: values.map((v) => v.value) } : {}), ...(notValues ? { notValues: notValues.map((v) => v.value) } : {}) });
      }
    }
    rr.done();
    rules.push({ from, to, when, at: rr.at });
  }
  spec.unsupported(['provider', 'targetRef', 'targetRefs']);
  spec.done();
  return { action: action as AuthorizationPolicySpec['action'], rules, ...(selector ? { selector } : {}) };
}
