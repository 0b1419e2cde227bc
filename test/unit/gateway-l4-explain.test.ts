/**
 * explain --from <gateway> for a TCP or TLS connection arriving at an L4 server (testdata/golden/gateway-l4 with
 * policies, test/support/gateway-l4-fixture.ts): the chain Envoy picks (by SNI for PASSTHROUGH, --sni or the host of
 * --to), the gateway's L4 authorization (the client's address; no principal without a client certificate), the
 * tcp/tls route's weighted destinations, and at each the connection (mTLS) and the callee's L4 authorization.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileSource } from '../../src/compiler.js';
import { explain, formatExplanation } from '../../src/explain/explain.js';
import type { ExplainRequest } from '../../src/explain/explain.js';
import { buildGraph } from '../../src/explain/graph.js';
import type { MeshModel } from '../../src/model/mesh-model.js';
import { L4_POLICIES, l4Mesh } from '../support/gateway-l4-fixture.js';

const model = (() => {
  const files = Object.entries(l4Mesh()).map(([p, text]) => ({ path: p, text }));
  const r = compileSource({ revision: 'r', files });
  assert.ok(r.ok, JSON.stringify(r.diagnostics));
  return r.model!;
})();

const ask = (q: Omit<ExplainRequest, 'from'>) => explain(model, { from: 'istio-system/ingress-1', ...q });
const at = (e: ReturnType<typeof ask>) =>
  e.destinations.map((d) => `${d.workload} ${d.share} ${d.transport} ${d.decision}`);

test('PASSTHROUGH: the chain by SNI, the gateway allows the client address, the tls route to v1 over mTLS', () => {
  const e = ask({ to: 'a.example.com:8443', sourceIp: '203.0.113.5' });
  assert.equal(e.verdict, 'ALLOW', formatExplanation(e, true));
  assert.equal(e.route?.name, 'shop/secure/tls[0]');
  assert.equal(e.gateway?.server, 'istio-system/edge/servers[0]');
  assert.equal(e.gateway?.tls, 'PASSTHROUGH');
  assert.equal(e.gateway?.l4?.sni, 'a.example.com');
  assert.equal(e.gateway?.decidedBy?.name, 'istio-system/ingress/rules[0]');
  assert.deepEqual(at(e), ['shop/secure-v1 100 mTLS ALLOW']);
  assert.equal(e.destinations[0].decidedBy?.name, 'shop/secure/rules[0]');
  const text = formatExplanation(e, false);
  assert.match(text, /the gateway sees: a TLS connection \(SNI a\.example\.com\) from 203\.0\.113\.5/);
});

test('PASSTHROUGH: a wildcard SNI chain splits 50/50; --sni chooses the chain, not the host of --to', () => {
  const e = ask({ to: 'secure.example.com:8443', sni: 'x.c.example.com', sourceIp: '203.0.113.5' });
  assert.equal(e.route?.name, 'shop/secure/tls[1]');
  assert.deepEqual(at(e), ['shop/secure-v1 50 mTLS ALLOW', 'shop/secure-v2 50 mTLS ALLOW']);
});

test("the gateway's L4 rules decide first: a client outside the allowed block, or a denied SNI, is closed", () => {
  const outside = ask({ to: 'a.example.com:8443' });
  assert.equal(outside.verdict, 'DENY');
  assert.deepEqual(outside.destinations, []);
  assert.equal(outside.gateway?.decision, 'DENY');
  assert.match(outside.gateway!.reason, /no rule of the ALLOW policies/);
  const b = ask({ to: 'b.example.com:8443', sourceIp: '203.0.113.5' });
  assert.equal(b.verdict, 'DENY');
  assert.equal(b.gateway?.decidedBy?.name, 'istio-system/no-b/rules[0]');
});

test('an SNI no tls route names gets no chain: the connection is closed', () => {
  const e = ask({ to: 'z.example.com:8443', sourceIp: '203.0.113.5' });
  assert.equal(e.verdict, 'DENY');
  assert.match(e.note ?? '', /answers the name z\.example\.com: no filter chain, the connection is closed/);
});

test('a TCP server: the tcp route 80/20; a TLS-terminating server: no client certificate, so no principal', () => {
  const tcp = ask({ to: 'anything:31400', sourceIp: '203.0.113.5' });
  assert.equal(tcp.verdict, 'ALLOW', formatExplanation(tcp, true));
  assert.equal(tcp.route?.name, 'shop/secure/tcp[0]');
  assert.equal(tcp.gateway?.tls, 'plaintext');
  assert.deepEqual(at(tcp), ['shop/secure-v1 80 mTLS ALLOW', 'shop/secure-v2 20 mTLS ALLOW']);
  const simple = ask({ to: 'tcp.example.com:31401', sourceIp: '203.0.113.5' });
  assert.equal(simple.verdict, 'DENY');
  assert.equal(simple.gateway?.tls, 'SIMPLE');
  assert.deepEqual(simple.destinations, []);
});

test("a sidecar's request through the egress gateway: its server (ISTIO_MUTUAL), its own rules, then its route", () => {
  const e = explain(model, { from: 'shop/secure-v1', to: 'api.external.example', path: '/x' });
  assert.equal(e.verdict, 'ALLOW', formatExplanation(e, true));
  assert.equal(e.status, 200);
  const [gw] = e.destinations;
  assert.equal(gw.workload, 'istio-system/egress-1');
  assert.equal(gw.transport, 'mTLS');
  assert.equal(gw.decidedBy?.name, 'istio-system/egress/rules[0]');
  assert.equal(gw.beyond?.route?.name, 'shop/external/http[1]');
  assert.deepEqual(
    gw.beyond?.destinations.map((d) => `${d.workload} ${d.transport} ${d.decision}`),
    ['api.external.example:443 (no sidecar) TLS ALLOW'],
  );
  const text = formatExplanation(e, false);
  assert.match(text, /ALLOW at istio-system\/egress-1 \(100% of requests, server istio-system\/egress\/servers\[0\]/);
  assert.match(text, /then the gateway's route shop\/external\/http\[1\]/);
  // Another principal: the gateway's own ALLOW policy does not admit it.
  const other = L4_POLICIES.replace('cluster.local/ns/shop/sa/secure', 'cluster.local/ns/shop/sa/someone-else');
  const files = Object.entries(l4Mesh(other)).map(([p, text]) => ({ path: p, text }));
  const denied = explain(compileSource({ revision: 'r', files }).model!, {
    from: 'shop/secure-v1',
    to: 'api.external.example',
  });
  assert.equal(denied.verdict, 'DENY');
  assert.equal(denied.status, 403);
  assert.equal(denied.destinations[0].stage, 'authorization');
  assert.equal(denied.destinations[0].beyond, undefined);
});

/** secure-v1 reaches the ingress gateway's ISTIO_MUTUAL TLS server (a tcp route to v2) through a TCP egress port. */
const TO_MESH_SERVER = `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ingress-mesh, namespace: istio-system }
spec:
  hosts: [ingress-mesh.istio-system.svc]
  location: MESH_INTERNAL
  ports: [{ number: 15443, name: tls, protocol: TLS }]
  workloadSelector: { labels: { istio: ingressgateway } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ingress-mesh, namespace: istio-system }
spec:
  host: ingress-mesh.istio-system.svc
  trafficPolicy: { tls: { mode: ISTIO_MUTUAL, sni: mtls.example.com } }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: secure-v1, namespace: shop }
spec:
  workloadSelector: { labels: { app: secure, version: v1 } }
  egress:
    - port: { number: 15443, protocol: TCP, name: tcp }
      hosts: [istio-system/ingress-mesh.istio-system.svc]
`;

const TO_L4_SERVER =
  "a sidecar's TCP connection to a gateway's ISTIO_MUTUAL L4 server: the gateway's L4 rules, then its tcp route";
test(TO_L4_SERVER, () => {
  const files = Object.entries(l4Mesh(L4_POLICIES + TO_MESH_SERVER)).map(([p, text]) => ({ path: p, text }));
  const r = compileSource({ revision: 'r', files });
  assert.ok(r.ok, JSON.stringify(r.diagnostics));
  const e = explain(r.model!, { from: 'shop/secure-v1', to: 'ingress-mesh.istio-system.svc:15443' });
  const [gw] = e.destinations;
  assert.equal(gw.workload, 'istio-system/ingress-1', formatExplanation(e, true));
  assert.equal(gw.transport, 'mTLS');
  assert.deepEqual(gw.server, { name: 'istio-system/edge/servers[3]', tls: 'ISTIO_MUTUAL' });
  // The ingress gateway's L4 rules admit 8443 and 31400 from an address block, and a partner principal on 31401.
  assert.equal(gw.decision, 'DENY');
  assert.match(gw.reason, /no rule of the ALLOW policies/);
  assert.ok(!edgesOf(r.model!).includes('shop/secure-v1->istio-system/ingress-1:15443'));
  // With a rule for the caller's principal on that port: through, and on to v2 over the gateway's mTLS.
  const rule = `    - from: [{ source: { principals: [cluster.local/ns/shop/sa/secure] } }]
      to: [{ operation: { ports: ["15443"] } }]
`;
  const policies = L4_POLICIES.replace('    - to: [{ operation: { methods: [GET] } }]\n', rule);
  const files2 = Object.entries(l4Mesh(policies + TO_MESH_SERVER)).map(([p, text]) => ({ path: p, text }));
  const m2 = compileSource({ revision: 'r', files: files2 }).model!;
  const ok = explain(m2, { from: 'shop/secure-v1', to: 'ingress-mesh.istio-system.svc:15443' });
  assert.equal(ok.verdict, 'ALLOW', formatExplanation(ok, true));
  assert.equal(ok.destinations[0].decidedBy?.name, 'istio-system/ingress/rules[2]');
  assert.equal(ok.destinations[0].beyond?.route?.name, 'shop/secure/tcp[1]');
  assert.deepEqual(
    ok.destinations[0].beyond?.destinations.map((d) => `${d.workload} ${d.transport} ${d.decision}`),
    ['shop/secure-v2 mTLS ALLOW'],
  );
  assert.ok(edgesOf(m2).includes('shop/secure-v1->istio-system/ingress-1:15443'), edgesOf(m2).join('\n'));
});

const edgesOf = (m: MeshModel) => buildGraph(m).edges.map((e) => `${e.from}->${e.to}:${e.port}`);
