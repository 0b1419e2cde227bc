/**
 * chancery graph: the example mesh's reachability in four formats (golden), and the flags a reviewer relies on:
 * over-broad ALLOW rules, plaintext-permitted edges, blanket DENY, and the mesh default.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compileSource } from '../src/compiler.js';
import { buildGraph, formatGraph } from '../src/explain/graph.js';
import { readDirectory } from '../src/source/directory.js';
import { API_WEB_BOT } from './support/mesh-fixture.js';
import { l4Mesh } from './support/gateway-l4-fixture.js';

const UPDATE = process.env.UPDATE_GOLDEN === '1';

function graphOf(files: Record<string, string> | string) {
  const src =
    typeof files === 'string'
      ? readDirectory(files).value
      : { revision: 'r', files: Object.entries(files).map(([p, text]) => ({ path: p, text })) };
  const r = compileSource(src);
  assert.ok(r.ok, JSON.stringify(r.diagnostics));
  return buildGraph(r.model!);
}

for (const format of ['table', 'json', 'dot', 'mermaid'] as const) {
  test(`example mesh graph, ${format}`, () => {
    const out = formatGraph(graphOf('examples/mesh'), format).replace(/ @ dir:[0-9a-f]+/g, '') + '\n';
    const file = `testdata/cli/graph-example.${format}.txt`;
    if (UPDATE) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, out);
    }
    assert.ok(existsSync(file), `missing ${file}; run UPDATE_GOLDEN=1`);
    assert.equal(out, readFileSync(file, 'utf8'));
  });
}

const mesh = (extra: string) => ({ 'm.yaml': `${API_WEB_BOT}${extra}` });

test('deny by default: no policy, no edge', () => {
  assert.deepEqual(graphOf(mesh('')).edges, []);
});

test('an ALLOW rule without "from" is flagged over-broad; PERMISSIVE is flagged plaintext', () => {
  const g = graphOf(
    mesh(`---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: open, namespace: ns }
spec:
  selector: { matchLabels: { app: api } }
  rules: [{ to: [{ operation: { methods: [GET] } }] }]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: api, namespace: ns }
spec:
  selector: { matchLabels: { app: api } }
  mtls: { mode: PERMISSIVE }
`),
  );
  assert.deepEqual(g.edges.map((e) => e.from).sort(), ['ns/bot-1', 'ns/web-1']);
  for (const e of g.edges) {
    assert.deepEqual(e.methods, ['GET']);
    assert.ok(e.flags.some((f) => f.startsWith('over-broad: ns/open/rules[0]')));
    assert.ok(e.flags.includes('plaintext accepted (PERMISSIVE)'));
  }
});

test('a principal-scoped ALLOW admits only that caller; a blanket DENY removes the edge', () => {
  const g = graphOf(
    mesh(`---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow, namespace: ns }
spec:
  selector: { matchLabels: { app: api } }
  rules: [{ from: [{ source: { namespaces: [ns] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-bots, namespace: ns }
spec:
  selector: { matchLabels: { app: api } }
  action: DENY
  rules: [{ from: [{ source: { principals: [cluster.local/ns/ns/sa/bot] } }] }]
`),
  );
  assert.deepEqual(
    g.edges.map((e) => `${e.from}->${e.to}`),
    ['ns/web-1->ns/api-1'],
  );
  assert.deepEqual(g.edges[0].flags, []);
});

test('mTLS DISABLE: no caller identity arrives, so a principal rule admits nobody while a notPrincipals rule admits everyone', () => {
  const g = graphOf(
    mesh(`---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: api, namespace: ns }
spec:
  selector: { matchLabels: { app: api } }
  mtls: { mode: DISABLE }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow, namespace: ns }
spec:
  selector: { matchLabels: { app: api } }
  rules:
    - from: [{ source: { principals: [cluster.local/ns/ns/sa/web] } }]
    - from: [{ source: { notPrincipals: [cluster.local/ns/ns/sa/bot] } }]
      to: [{ operation: { paths: ["/np/*"] } }]
`),
  );
  assert.deepEqual(
    g.edges.map((e) => `${e.from}->${e.to} ${e.paths.join(',')}`),
    ['ns/bot-1->ns/api-1 /np/*', 'ns/web-1->ns/api-1 /np/*'],
  );
  for (const e of g.edges) {
    assert.equal(e.mtls, 'DISABLE');
    assert.deepEqual(e.flags, ['plaintext accepted (DISABLE)', 'sent in plaintext: no caller identity']);
    assert.deepEqual(e.via, ['ns/allow/rules[1] (m.yaml:38:7 @ r)']);
  }
});

test('a DestinationRule that turns mTLS off towards a STRICT callee leaves no edge: the connection is refused', () => {
  const g = graphOf(
    mesh(`---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow, namespace: ns }
spec:
  selector: { matchLabels: { app: api } }
  rules: [{ from: [{ source: { namespaces: [ns] } }] }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: ns }
spec:
  host: api.ns.svc
  trafficPolicy: { tls: { mode: DISABLE } }
`),
  );
  assert.deepEqual(g.edges, []);
});

const l4Graph = (policies?: string) => {
  const g = graphOf(l4Mesh(policies));
  return g.edges.map((e) => `${e.from}->${e.to}:${e.port} ${e.service}`);
};

const L4_EDGES =
  'gateway L4 servers: outside -> gateway per chain its L4 rules admit, gateway -> what its tcp_proxy reaches';
test(L4_EDGES, () => {
  const g = graphOf(l4Mesh());
  const edges = g.edges.map((e) => `${e.from}->${e.to}:${e.port} ${e.service}`);
  assert.deepEqual(edges, [
    'istio-system/egress-1->api.external.example:443 api.external.example',
    'istio-system/ingress-1->shop/secure-v1:443 secure.shop.svc',
    'istio-system/ingress-1->shop/secure-v1:9000 secure.shop.svc',
    'istio-system/ingress-1->shop/secure-v2:443 secure.shop.svc',
    'istio-system/ingress-1->shop/secure-v2:9000 secure.shop.svc',
    // 31401 (SIMPLE: no client certificate) cannot match a principals rule; the HTTP-only rule is no L4 rule.
    'outside->istio-system/ingress-1:31400 *',
    'outside->istio-system/ingress-1:8443 *.c.example.com',
    'outside->istio-system/ingress-1:8443 a.example.com,b.example.com',
    'shop/secure-v1->istio-system/egress-1:80 egressgateway.istio-system.svc',
    'shop/secure-v2->istio-system/egress-1:80 egressgateway.istio-system.svc',
  ]);
  const pass = g.edges.find((e) => e.service === 'a.example.com,b.example.com')!;
  assert.deepEqual(pass.via, ['istio-system/ingress/rules[0] (p.yaml:7:7 @ r)']);
  assert.deepEqual(pass.except, ['(some connections)']);
  assert.ok(
    pass.flags.includes('from outside, TLS PASSTHROUGH by SNI, tcp route shop/secure/tls[0]'),
    pass.flags.join('; '),
  );
  assert.equal(pass.mtls, 'DISABLE');
  const tcp = g.edges.find((e) => e.port === 31400)!;
  assert.ok(tcp.flags.includes('from outside, TCP, tcp route shop/secure/tcp[0]'), tcp.flags.join('; '));
  const egress = g.edges.find((e) => e.to === 'istio-system/egress-1')!;
  assert.equal(egress.mtls, 'STRICT');
  assert.deepEqual(egress.via, ['istio-system/egress/rules[0] (p.yaml:35:7 @ r)']);
  assert.ok(
    egress.flags.includes("to the gateway's server istio-system/egress/servers[0] (ISTIO_MUTUAL)"),
    egress.flags.join('; '),
  );
});

test('gateway L4: the mesh default ALLOW opens every chain; a MUTUAL-less principals rule never does', () => {
  const open = `apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec: { authorization: { default: ALLOW } }
`;
  const edges = l4Graph(open);
  for (const e of [
    'outside->istio-system/ingress-1:31400 *',
    'outside->istio-system/ingress-1:31401 tcp.example.com',
    'outside->istio-system/ingress-1:8443 a.example.com,b.example.com',
    'istio-system/ingress-1->shop/secure-v1:9000 secure.shop.svc',
    'shop/secure-v1->istio-system/egress-1:80 egressgateway.istio-system.svc',
  ])
    assert.ok(edges.includes(e), `${e} in ${edges.join('\n')}`);
  // Only mesh workloads complete an ISTIO_MUTUAL handshake: no edge from outside.
  assert.ok(!edges.some((e) => e.startsWith('outside->istio-system/ingress-1:15443')), edges.join('\n'));
  assert.ok(!edges.some((e) => e.startsWith('outside->istio-system/egress-1')), edges.join('\n'));
});

test('a route to a service outside the mesh is an edge to its host: the egress gateway -> the external host', () => {
  const g = graphOf(l4Mesh());
  const out = g.edges.filter((e) => e.to === 'api.external.example');
  assert.deepEqual(
    out.map((e) => `${e.from}->${e.to}:${e.port}`),
    ['istio-system/egress-1->api.external.example:443'],
    'the sidecars route the host to the egress gateway, not to it directly',
  );
  const [e] = out;
  assert.equal(e.mtls, 'DISABLE');
  assert.deepEqual(e.via, ['outside the mesh: no sidecar enforces policy there']);
  assert.ok(
    e.flags.some((f) => f.startsWith('TLS SIMPLE originated by the caller (SNI api.external.example')),
    e.flags.join('; '),
  );
  assert.deepEqual(g.external, ['api.external.example']);
});
