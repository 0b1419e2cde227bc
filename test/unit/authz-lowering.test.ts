/**
 * The one lowering of AuthorizationPolicy (ir/authz.ts), value by value, against Istio's documented meaning; and an
 * inventory of every field of Istio's AuthorizationPolicy, RequestAuthentication and PeerAuthentication reference:
 * each is either implemented (it changes the compiled Envoy configuration) or rejected with CH0205, never an
 * "unknown field" and never silently ignored.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileSource } from '../../src/compiler.js';
import { stringMatcherMatches } from '../../src/explain/authz.js';
import { expandTrustDomain, hostMatcher, istioString, lowerRule, uriTemplateRegex } from '../../src/ir/authz.js';
import { normalizeAuthority, normalizePath } from '../../src/ir/request-normalization.js';
import type { AuthzRule, AuthzSource } from '../../src/policy/security-types.js';
import { re2FullMatch } from '../../src/util/re2.js';

const at = { file: 'p.yaml', line: 1, column: 1 };
const empty = (): AuthzSource => ({ principals: {}, requestPrincipals: {}, namespaces: {}, serviceAccounts: {}, trustDomains: {}, ipBlocks: {}, remoteIpBlocks: {} });
const ctx = { trustDomains: ['new.td', 'old.td'], namespace: 'shop', l4: false, action: 'ALLOW' as const };

test('Istio string forms become Envoy matchers', () => {
  assert.deepEqual(istioString('*'), { regex: '.+' });
  assert.deepEqual(istioString('/a/*'), { prefix: '/a/' });
  assert.deepEqual(istioString('*.b'), { suffix: '.b' });
  assert.deepEqual(istioString('x'), { exact: 'x' });
});

test('hosts: case-insensitive, with or without a port', () => {
  const m = hostMatcher('api.shop.svc');
  assert.notEqual(m, 'present');
  const ok = (v: string) => stringMatcherMatches(m as never, v);
  for (const v of ['api.shop.svc', 'API.shop.SVC', 'api.shop.svc:80', 'api.shop.svc:8080']) assert.ok(ok(v), v);
  for (const v of ['api.shop.svcx', 'xapi.shop.svc', 'api.shop.svc:', 'api.shop.svc:80x', 'api-shop-svc']) assert.ok(!ok(v), v);
  const wild = hostMatcher('*.shop.svc') as never;
  assert.ok(stringMatcherMatches(wild, 'A.SHOP.svc:80'));
  assert.ok(!stringMatcherMatches(wild, 'a.shop.svc.evil'));
  assert.deepEqual(hostMatcher('api.shop.svc:8080'), { exact: 'api.shop.svc:8080', ignoreCase: true }, 'an explicit port stays literal');
  assert.equal(hostMatcher('*'), 'present');
});

test('principals: cluster.local, the trust domain and its aliases all stand for all of them', () => {
  assert.deepEqual(expandTrustDomain('cluster.local/ns/a/sa/b', ctx.trustDomains), ['new.td/ns/a/sa/b', 'old.td/ns/a/sa/b']);
  assert.deepEqual(expandTrustDomain('old.td/ns/a/sa/b', ctx.trustDomains), ['new.td/ns/a/sa/b', 'old.td/ns/a/sa/b']);
  assert.deepEqual(expandTrustDomain('other.td/ns/a/sa/b', ctx.trustDomains), ['other.td/ns/a/sa/b']);
  assert.deepEqual(expandTrustDomain('*/ns/a/sa/b', ctx.trustDomains), ['*/ns/a/sa/b']);
});

/** Lowers one source and tells whether a peer / JWT satisfies it. */
function admits(source: Partial<AuthzSource>, facts: { principal?: string; jwt?: Record<string, unknown> }): boolean {
  const rule: AuthzRule = { from: [{ ...empty(), ...source }], to: [], when: [], at };
  const ir = lowerRule(rule, 'p/rules[0]', ctx)!;
  const check = (t: typeof ir.principal): boolean => {
    if (t.op === 'any') return true;
    if (t.op === 'and') return t.of.every(check);
    if (t.op === 'or') return t.of.some(check);
    if (t.op === 'not') return !check(t.of);
    const l = t.leaf;
    if (l.kind === 'peer') return facts.principal !== undefined && stringMatcherMatches(l.match, facts.principal);
    if (l.kind === 'claim') {
      const v = l.path.reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), facts.jwt);
      return typeof v === 'string' && stringMatcherMatches(l.match, v);
    }
    throw new Error(`unexpected leaf ${l.kind}`);
  };
  return check(ir.principal);
}

test('principals, namespaces and serviceAccounts against SPIFFE ids', () => {
  const id = 'spiffe://old.td/ns/shop/sa/web';
  assert.ok(admits({ principals: { values: ['cluster.local/ns/shop/sa/web'] } }, { principal: id }));
  assert.ok(!admits({ principals: { values: ['cluster.local/ns/shop/sa/web'] } }, { principal: 'spiffe://evil.td/ns/shop/sa/web' }));
  assert.ok(admits({ principals: { values: ['*'] } }, { principal: id }));
  assert.ok(!admits({ principals: { values: ['*'] } }, {}), '"*" needs a peer certificate');
  assert.ok(admits({ principals: { values: ['*/sa/web'] } }, { principal: id }));
  assert.ok(admits({ namespaces: { values: ['shop'] } }, { principal: id }));
  assert.ok(admits({ namespaces: { values: ['sh*'] } }, { principal: id }));
  assert.ok(!admits({ namespaces: { values: ['sho'] } }, { principal: id }));
  assert.ok(!admits({ namespaces: { values: ['*'] } }, {}));
  assert.ok(admits({ serviceAccounts: { values: ['web'] } }, { principal: id }), 'the policy namespace by default');
  assert.ok(admits({ serviceAccounts: { values: ['shop/web'] } }, { principal: id }));
  assert.ok(!admits({ serviceAccounts: { values: ['web'] } }, { principal: 'spiffe://new.td/ns/shop/sa/web-admin' }));
  assert.ok(!admits({ serviceAccounts: { values: ['other/web'] } }, { principal: id }));
  assert.ok(admits({ trustDomains: { values: ['new.td'] } }, { principal: id }), 'aliases count as the trust domain');
  assert.ok(!admits({ trustDomains: { values: ['evil.td'] } }, { principal: id }));
  assert.ok(!admits({ principals: { not: ['cluster.local/ns/shop/sa/web'] } }, { principal: id }));
});

test('requestPrincipals: exactly Istio\'s iss/sub rules', () => {
  const rp = (v: string, jwt: Record<string, unknown>) => admits({ requestPrincipals: { values: [v] } }, { jwt });
  assert.ok(rp('issuer-1', { iss: 'issuer-1', sub: '' }));
  assert.ok(!rp('issuer-1', { iss: 'issuer-1', sub: 'alice' }), 'no "/" means an empty subject, not any subject');
  assert.ok(!rp('issuer-1', { iss: 'issuer-1' }));
  assert.ok(rp('https://i.test/alice', { iss: 'https://i.test', sub: 'alice' }), 'split at the last "/"');
  assert.ok(rp('https://i.test/*', { iss: 'https://i.test', sub: 'bob' }));
  assert.ok(!rp('https://i.test/*', { iss: 'https://i.test' }), '"*" is a non-empty subject');
  assert.ok(rp('*', { iss: 'x', sub: 'y' }));
  assert.ok(!rp('*', { iss: 'x' }));
  assert.ok(rp('*/alice', { iss: 'any', sub: 'alice' }));
  assert.ok(rp('*.test/alice', { iss: 'https://i.test', sub: 'alice' }));
  assert.ok(rp('https://i.test/al*', { iss: 'https://i.test', sub: 'alice' }));
});

test('TCP: an ALLOW rule with HTTP attributes is dropped; a DENY loses only those attributes', () => {
  const rule: AuthzRule = { from: [{ ...empty(), requestPrincipals: { values: ['*'] }, principals: { values: ['*'] } }], to: [], when: [], at };
  assert.equal(lowerRule(rule, 'p/rules[0]', { ...ctx, l4: true }), undefined);
  const deny = lowerRule(rule, 'p/rules[0]', { ...ctx, l4: true, action: 'DENY' })!;
  assert.equal(deny.principal.op, 'leaf', 'only the principal remains');
});

test('path templates as Envoy\'s uri_template', () => {
  const re = uriTemplateRegex('/a/*/b/**');
  assert.ok(re2FullMatch(re, '/a/x/b/c/d'));
  assert.ok(re2FullMatch(re, '/a/x/b/'));
  assert.ok(!re2FullMatch(re, '/a/x/y/b/c'));
  assert.ok(!re2FullMatch(re, '/a//b/c'));
});

test('request normalisation per level', () => {
  const n = (p: string, level: 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES' = 'DECODE_AND_MERGE_SLASHES') => {
    const r = normalizePath(p, level);
    return r.ok ? r.path : 'refused';
  };
  assert.equal(n('//admin/x', 'NONE'), '//admin/x');
  assert.equal(n('/x/../admin/x', 'BASE'), '/admin/x');
  assert.equal(n('/%61dmin/x', 'BASE'), '/admin/x');
  assert.equal(n('/admin%2Fx', 'BASE'), '/admin%2Fx');
  assert.equal(n('//admin/x', 'BASE'), '//admin/x');
  assert.equal(n('//admin//x', 'MERGE_SLASHES'), '/admin/x');
  assert.equal(n('/api/..%2Fadmin/x'), '/admin/x');
  assert.equal(n('/a/b/../../../x?y=/../z'), '/x?y=/../z', 'the query is not touched');
  assert.equal(n('/a#b'), 'refused');
  assert.equal(normalizeAuthority('api.svc.:80'), 'api.svc:80');
  assert.equal(normalizeAuthority('api.svc.'), 'api.svc');
});

// ---- the field inventory ----

const WORKLOAD = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.shop.svc]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8080 }]
  workloadSelector: { labels: { app: api } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: api-1, namespace: shop, labels: { app: api } }
spec: { address: 10.0.0.1, serviceAccount: api }
`;

const JWKS = JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'k' }] });

/** A document per field; the field is replaced into `{}` placeholders. */
const AP = (spec: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
${spec}`;
const RA = (rule: string, spec = '') => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: r, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
${spec}  jwtRules:
    - issuer: https://i.test
      jwks: '${JWKS}'
${rule}`;
const PA = (spec: string) => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: pa, namespace: shop }
spec:
${spec}`;

const src = (rule: string) => AP(`  rules:\n    - from: [{ source: { ${rule} } }]\n`);
const op = (rule: string) => AP(`  rules:\n    - to: [{ operation: { ${rule} } }]\n`);
const when = (key: string, v: string) => AP(`  rules:\n    - when: [{ key: "${key}", values: ["${v}"] }]\n`);

/** Each field, and the same document without it: the two must compile to different Envoy configurations. */
const ALLOW_ALL = AP('  rules: [{}]\n');
const IMPLEMENTED: Record<string, [string, string]> = {
  'AuthorizationPolicy.spec.selector': [AP('  rules: [{}]\n'), ALLOW_ALL.replace('app: api', 'app: other')],
  'AuthorizationPolicy.spec.action': [AP('  action: DENY\n  rules: [{}]\n'), ALLOW_ALL],
  'AuthorizationPolicy.metadata.annotations[istio.io/dry-run]': [AP('  rules: [{}]\n').replace('namespace: shop }', 'namespace: shop, annotations: { istio.io/dry-run: "true" } }'), ALLOW_ALL],
  'Source.principals': [src('principals: ["cluster.local/ns/a/sa/b"]'), ALLOW_ALL],
  'Source.notPrincipals': [src('notPrincipals: ["cluster.local/ns/a/sa/b"]'), ALLOW_ALL],
  'Source.requestPrincipals': [src('requestPrincipals: ["i/s"]'), ALLOW_ALL],
  'Source.notRequestPrincipals': [src('notRequestPrincipals: ["i/s"]'), ALLOW_ALL],
  'Source.namespaces': [src('namespaces: ["a"]'), ALLOW_ALL],
  'Source.notNamespaces': [src('notNamespaces: ["a"]'), ALLOW_ALL],
  'Source.serviceAccounts': [src('serviceAccounts: ["a/b"]'), ALLOW_ALL],
  'Source.notServiceAccounts': [src('notServiceAccounts: ["a/b"]'), ALLOW_ALL],
  'Source.trustDomains': [src('trustDomains: ["x.td"]'), ALLOW_ALL],
  'Source.notTrustDomains': [src('notTrustDomains: ["x.td"]'), ALLOW_ALL],
  'Source.ipBlocks': [src('ipBlocks: ["10.0.0.0/8"]'), ALLOW_ALL],
  'Source.notIpBlocks': [src('notIpBlocks: ["10.0.0.0/8"]'), ALLOW_ALL],
  'Source.remoteIpBlocks': [src('remoteIpBlocks: ["10.0.0.0/8"]'), ALLOW_ALL],
  'Source.notRemoteIpBlocks': [src('notRemoteIpBlocks: ["10.0.0.0/8"]'), ALLOW_ALL],
  'Operation.hosts': [op('hosts: ["a.b"]'), ALLOW_ALL],
  'Operation.notHosts': [op('notHosts: ["a.b"]'), ALLOW_ALL],
  'Operation.ports': [op('ports: ["8080"]'), ALLOW_ALL],
  'Operation.notPorts': [op('notPorts: ["8080"]'), ALLOW_ALL],
  'Operation.methods': [op('methods: ["GET"]'), ALLOW_ALL],
  'Operation.notMethods': [op('notMethods: ["GET"]'), ALLOW_ALL],
  'Operation.paths': [op('paths: ["/a/{*}"]'), ALLOW_ALL],
  'Operation.notPaths': [op('notPaths: ["/a"]'), ALLOW_ALL],
  'Condition request.headers': [when('request.headers[x-a]', 'b'), ALLOW_ALL],
  'Condition source.ip': [when('source.ip', '10.0.0.1'), ALLOW_ALL],
  'Condition remote.ip': [when('remote.ip', '10.0.0.1'), ALLOW_ALL],
  'Condition source.namespace': [when('source.namespace', 'a'), ALLOW_ALL],
  'Condition source.principal': [when('source.principal', 'cluster.local/ns/a/sa/b'), ALLOW_ALL],
  'Condition source.serviceAccount': [when('source.serviceAccount', 'a/b'), ALLOW_ALL],
  'Condition source.trustDomain': [when('source.trustDomain', 'x.td'), ALLOW_ALL],
  'Condition request.auth.principal': [when('request.auth.principal', 'i/s'), ALLOW_ALL],
  'Condition request.auth.audiences': [when('request.auth.audiences', 'a'), ALLOW_ALL],
  'Condition request.auth.presenter': [when('request.auth.presenter', 'a'), ALLOW_ALL],
  'Condition request.auth.claims': [when('request.auth.claims[groups]', 'a'), ALLOW_ALL],
  'Condition destination.ip': [when('destination.ip', '10.0.0.1'), ALLOW_ALL],
  'Condition destination.port': [when('destination.port', '8080'), ALLOW_ALL],
  'Condition connection.sni': [when('connection.sni', 'a.b'), ALLOW_ALL],
  'Condition notValues': [AP('  rules:\n    - when: [{ key: "source.ip", notValues: ["10.0.0.1"] }]\n'), ALLOW_ALL],
  'RequestAuthentication.jwtRules': [RA(''), ''],
  'JWTRule.audiences': [RA('      audiences: [x]\n'), RA('')],
  'JWTRule.fromHeaders': [RA('      fromHeaders: [{ name: x-jwt, prefix: "B " }]\n'), RA('')],
  'JWTRule.fromParams': [RA('      fromParams: [t]\n'), RA('')],
  'JWTRule.fromCookies': [RA('      fromCookies: [t]\n'), RA('')],
  'JWTRule.outputPayloadToHeader': [RA('      outputPayloadToHeader: x-payload\n'), RA('')],
  'JWTRule.forwardOriginalToken': [RA('      forwardOriginalToken: true\n'), RA('')],
  'JWTRule.outputClaimToHeaders': [RA('      outputClaimToHeaders: [{ header: x-sub, claim: sub }]\n'), RA('')],
  'PeerAuthentication.mtls.mode': [PA('  mtls: { mode: PERMISSIVE }\n'), ''],
  'PeerAuthentication.portLevelMtls': [PA('  selector: { matchLabels: { app: api } }\n  portLevelMtls: { 8080: { mode: DISABLE } }\n'), ''],
};

const REJECTED: Record<string, string> = {
  'AuthorizationPolicy.spec.targetRef': AP('  targetRef: { kind: Service, name: api }\n'),
  'AuthorizationPolicy.spec.targetRefs': AP('  targetRefs: [{ kind: Service, name: api }]\n'),
  'Condition experimental.envoy.filters': when('experimental.envoy.filters.network.mysql_proxy[db.table]', 'x'),
  'RequestAuthentication.spec.targetRef': RA('', '  targetRef: { kind: Service, name: api }\n'),
  'RequestAuthentication.spec.targetRefs': RA('', '  targetRefs: [{ kind: Service, name: api }]\n'),
};

/** The Envoy resources of the api sidecar, without origins (which name lines, not behaviour). */
const envoyOf = (r: ReturnType<typeof compile>) =>
  JSON.stringify([...r.proxies.get('shop/api-1')!.resources.values()].map((list) => list.map((x) => x.json)));

function compile(doc: string) {
  return compileSource({ revision: 'r', files: [{ path: 'w.yaml', text: WORKLOAD }, { path: 'p.yaml', text: doc }] });
}

test('every implemented Istio field changes what the sidecar enforces', () => {
  for (const [field, [doc, without]] of Object.entries(IMPLEMENTED)) {
    const r = compile(doc);
    const base = compile(without);
    assert.ok(r.ok && base.ok, `${field}: ${[...r.diagnostics, ...base.diagnostics].map((d) => `${d.code} ${d.message}`).join('; ')}`);
    assert.notEqual(envoyOf(r), envoyOf(base), `${field} changes nothing`);
  }
});

test('every Istio field not implemented is CH0205, never an unknown field', () => {
  for (const [field, doc] of Object.entries(REJECTED)) {
    const codes = compile(doc).diagnostics.map((d) => d.code);
    assert.ok(codes.includes('CH0205'), `${field}: ${codes.join(', ')}`);
    assert.ok(!codes.includes('CH0201'), `${field}: reported as unknown`);
  }
});

test('Istio\'s validation rules for authorization', () => {
  const codes = (doc: string) => compile(doc).diagnostics.filter((d) => d.severity === 'error').map((d) => d.code);
  assert.deepEqual(codes(src('serviceAccounts: ["a/*"]')), ['CH0204'], 'no wildcards in serviceAccounts');
  assert.deepEqual(codes(src('serviceAccounts: ["a/b"], principals: ["x"]')), ['CH0204'], 'not with principals');
  assert.deepEqual(codes(op('paths: ["/a/{**}/b"]')), ['CH0204'], '{**} must be last');
  assert.deepEqual(codes(op('paths: ["/a/{x}"]')), ['CH0204']);
  assert.deepEqual(codes(op('paths: ["/a*b"]')), ['CH0204']);
  assert.deepEqual(codes(src('ipBlocks: ["300.0.0.1"]')), ['CH0204']);
  assert.deepEqual(codes(src('ipBlocks: ["fd00::/8"]')), [], 'IPv6 ranges are addresses too');
  assert.deepEqual(codes(AP('  rules: [{}]\n').replace('namespace: shop }', 'namespace: shop, annotations: { istio.io/dry-run: "yes" } }')), ['CH0204']);
  assert.deepEqual(codes(AP('  action: CUSTOM\n  rules: [{}]\n')), ['CH0203'], 'CUSTOM needs a provider');
  assert.deepEqual(codes(AP('  action: DENY\n  provider: { name: x }\n')), ['CH0204']);
  assert.deepEqual(codes(AP('  rules:\n    - from: [{ source: {} }]\n')), ['CH0203'], 'an empty source');
  assert.deepEqual(codes(when('request.auth.claims[', 'x')), ['CH0204']);
});
