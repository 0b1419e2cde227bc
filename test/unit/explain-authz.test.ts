/**
 * The corners of explain's authorization evaluation that the end-to-end matrix (test/e2e/explain.test.ts) does not
 * reach through HTTP sidecars: TCP listeners (rbac.ts drops ALLOW rules that need HTTP attributes, and applies DENY
 * rules without their HTTP parts), claims that are lists or scalars, and the mesh default.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluate, stringMatcherMatches, type RequestFacts } from '../../src/explain/authz.js';
import { istioString, lowerRule } from '../../src/ir/authz.js';
import type { InboundSecurityIR } from '../../src/ir/types.js';
import type { AuthzRule } from '../../src/policy/security-types.js';

const at = { file: 'p.yaml', line: 1, column: 1 };
const rule = (r: Partial<{ from: AuthzRule['from']; to: AuthzRule['to']; when: AuthzRule['when'] }>): AuthzRule =>
  ({ from: r.from ?? [], to: r.to ?? [], when: r.when ?? [], at }) as AuthzRule;
const op = (o: { paths?: string[]; ports?: string[] }) =>
  ({
    hosts: {},
    ports: o.ports ? { values: o.ports } : {},
    methods: {},
    paths: o.paths ? { values: o.paths } : {},
  }) as AuthzRule['to'][number];
type P = { name: string; action: 'ALLOW' | 'DENY' | 'AUDIT'; rules: AuthzRule[] };
/** Lowered as ir/inbound-security.ts does, for an HTTP listener or (l4) a TCP one. */
const sec = (policies: P[], defaultAction: 'DENY' | 'ALLOW' = 'DENY', l4 = false): InboundSecurityIR => ({
  mtls: 'STRICT',
  trustDomain: 'cluster.local',
  trustDomainAliases: [],
  defaultAction,
  policies: policies.map((p) => ({
    name: p.name,
    action: p.action,
    dryRun: false,
    origin: at,
    rules: p.rules.flatMap(
      (r, i) =>
        lowerRule(r, `${p.name}/rules[${i}]`, {
          trustDomains: ['cluster.local'],
          namespace: 'ns',
          l4,
          action: p.action,
        }) ?? [],
    ),
  })),
  jwt: [],
});
const stringMatches = (pattern: string, v: string, ic = false) => stringMatcherMatches(istioString(pattern, ic), v);
const facts: RequestFacts = {
  principal: 'spiffe://cluster.local/ns/a/sa/b',
  sourceIp: '10.0.0.1',
  host: 'h',
  port: 5432,
  method: 'GET',
  path: '/x',
  headers: {},
};

test('Istio string forms', () => {
  assert.ok(stringMatches('*', 'x'));
  assert.ok(!stringMatches('*', ''));
  assert.ok(stringMatches('/a/*', '/a/b'));
  assert.ok(stringMatches('*/b', '/a/b'));
  assert.ok(!stringMatches('/a', '/a/b'));
  assert.ok(stringMatches('API.x', 'api.x', true));
});

test('TCP: an ALLOW rule that needs HTTP attributes never matches; a port-only rule does', () => {
  const paths = [{ name: 'ns/p', action: 'ALLOW' as const, rules: [rule({ to: [op({ paths: ['/x'] })] })] }];
  assert.equal(evaluate(sec(paths), facts).allowed, true, 'on HTTP the path rule allows');
  const l4 = evaluate(sec(paths, 'DENY', true), facts);
  assert.equal(l4.allowed, false, 'on TCP it is dropped, leaving an ALLOW policy with no rule');
  assert.deepEqual(l4.matched, []);
  const ports = sec(
    [{ name: 'ns/p', action: 'ALLOW', rules: [rule({ to: [op({ ports: ['5432'] })] })] }],
    'DENY',
    true,
  );
  assert.equal(evaluate(ports, facts).decidedBy?.name, 'ns/p/rules[0]');
});

test('TCP: a DENY rule applies with its HTTP parts ignored (denies more, never less)', () => {
  const d = [{ name: 'ns/d', action: 'DENY' as const, rules: [rule({ to: [op({ paths: ['/other'] })] })] }];
  assert.equal(evaluate(sec(d, 'ALLOW'), facts).allowed, true, 'on HTTP the path does not match');
  assert.equal(evaluate(sec(d, 'ALLOW', true), facts).decidedBy?.name, 'ns/d/rules[0]');
});

test('JWT claims: a list claim matches any element (presenter too, as in Istio)', () => {
  const claims = (key: string, values: string[]) => rule({ when: [{ key, values, at }] });
  const s = sec([
    {
      name: 'ns/j',
      action: 'ALLOW',
      rules: [claims('request.auth.claims[groups]', ['admins']), claims('request.auth.presenter', ['cli'])],
    },
  ]);
  const jwt = (j: Record<string, unknown>) => ({ ...facts, jwt: { iss: 'i', ...j } });
  assert.equal(evaluate(s, jwt({ groups: ['staff', 'admins'] })).decidedBy?.name, 'ns/j/rules[0]');
  assert.equal(evaluate(s, jwt({ groups: 'admins' })).decidedBy?.name, 'ns/j/rules[0]');
  assert.equal(evaluate(s, jwt({ azp: 'cli' })).decidedBy?.name, 'ns/j/rules[1]');
  assert.equal(evaluate(s, jwt({ azp: ['cli'] })).decidedBy?.name, 'ns/j/rules[1]', 'Istio matches azp as a list too');
});

test('the mesh default decides only when no ALLOW policy applies; AUDIT never decides', () => {
  const audit = sec([{ name: 'ns/a', action: 'AUDIT', rules: [rule({})] }]);
  const d = evaluate(audit, facts);
  assert.equal(d.allowed, false);
  assert.equal(d.decidedBy, undefined);
  assert.match(d.reason, /mesh default DENY/);
  assert.deepEqual(
    d.matched.map((m) => m.name),
    ['ns/a/rules[0]'],
  );
  assert.equal(evaluate(sec([], 'ALLOW'), facts).allowed, true);
});
