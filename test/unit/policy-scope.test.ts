/**
 * Which workloads a security policy applies to, as Istio attaches them (pilot's ListAuthorizationPolicies and
 * getConfigsForWorkload: the workload's namespace and the root namespace are searched, and a policy attaches when it
 * has no selector or its selector's labels are the workload's): an AuthorizationPolicy or RequestAuthentication in
 * the root namespace with a selector applies to the matching workloads of every namespace. PeerAuthentication is
 * Istio's exception: with a selector it is a workload policy only outside the root namespace.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileSource, type CompileResult } from '../../src/compiler.js';

const workload = (ns: string, name: string, app: string, ip: string) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}, namespace: ${ns}, labels: { app: ${app} } }
spec: { address: ${ip}, serviceAccount: ${app} }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: [${name}.${ns}.svc]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: ${app} } }
`;

const MESH = [
  workload('shop', 'pay-1', 'payments', '10.0.1.1'),
  workload('shop', 'web-1', 'web', '10.0.1.2'),
  workload('istio-system', 'ingress-1', 'payments', '10.0.2.1'),
].join('---\n');

const ROOT_POLICIES = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: payments-deny-admin, namespace: istio-system }
spec:
  selector: { matchLabels: { app: payments } }
  action: DENY
  rules:
    - to: [{ operation: { paths: ["/admin/*"] } }]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: payments-jwt, namespace: istio-system }
spec:
  selector: { matchLabels: { app: payments } }
  jwtRules: [{ issuer: https://issuer.test, jwksUri: https://issuer.test/jwks }]
`;

function compile(): CompileResult {
  const files = [
    { path: 'mesh.yaml', text: MESH },
    { path: 'root.yaml', text: ROOT_POLICIES },
  ];
  const r = compileSource({ revision: 't', files });
  assert.ok(r.ok, JSON.stringify(r.diagnostics.filter((d) => d.severity === 'error')));
  return r;
}

/** The AuthorizationPolicies and JWT rules on a workload's inbound listeners. */
function security(r: CompileResult, id: string): { policies: string[]; jwt: string[] } {
  const listeners = r.proxies.get(id)!.ir.listeners.filter((l) => l.security);
  return {
    policies: [...new Set(listeners.flatMap((l) => l.security!.policies.map((p) => p.name)))],
    jwt: [...new Set(listeners.flatMap((l) => l.security!.jwt.map((j) => j.name)))],
  };
}

test('a root-namespace AuthorizationPolicy or RequestAuthentication with a selector applies in every namespace', () => {
  const r = compile();
  const pay = security(r, 'shop/pay-1');
  assert.deepEqual(pay.policies, ['istio-system/payments-deny-admin'], 'the DENY reaches payments in shop');
  assert.ok(pay.jwt.some((n) => n.startsWith('istio-system/payments-jwt')), JSON.stringify(pay.jwt));
  assert.deepEqual(security(r, 'shop/web-1'), { policies: [], jwt: [] }, 'not a workload the selector matches');
  assert.deepEqual(security(r, 'istio-system/ingress-1').policies, ['istio-system/payments-deny-admin']);
  assert.ok(!r.diagnostics.some((d) => d.code === 'CH0303'), 'the selector matches workloads (in shop)');
});
