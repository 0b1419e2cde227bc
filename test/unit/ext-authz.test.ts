/**
 * External authorization (AuthorizationPolicy action CUSTOM with Mesh envoyExtAuthzHttp / envoyExtAuthzGrpc
 * providers): validation tables (code and file:line:col), and what the compiler makes of a valid set — the
 * provider's cluster outside the Sidecar scope, the filter order CUSTOM -> DENY -> ALLOW, the TCP filters, and
 * explain's answer for requests the CUSTOM rules select.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileSource } from '../../src/compiler.js';
import { explain } from '../../src/explain/explain.js';
import { buildGraph } from '../../src/explain/graph.js';

const compile = (files: Record<string, string>) =>
  compileSource({ revision: 'test', files: Object.entries(files).map(([path, text]) => ({ path, text })) });

function diagnose(files: Record<string, string>): string[] {
  type At = { file: string; line: number; column: number } | undefined;
  const at = (l: At) => (l ? `${l.file}:${l.line}:${l.column}` : '-');
  return compile(files).diagnostics.map((d) => `${d.code} ${at(d.location)}`);
}

/** A Mesh with one provider; `body` is the provider's fields, indented under its kind. */
const MESH = (kind: string, body: string, name = 'authz') => `apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec:
  extensionProviders:
    - name: ${name}
      ${kind}:
${body}`;

const HTTP_OK = '        service: authz.sec.svc\n        port: 8000\n';
const GRPC_OK = '        service: authz.sec.svc\n        port: 9000\n';

const AUTHZ_SE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: authz, namespace: sec }
spec:
  hosts: [authz.sec.svc]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
    - { number: 8000, name: http, protocol: HTTP }
    - { number: 9000, name: grpc, protocol: GRPC }
  endpoints: [{ address: 10.9.0.1 }]
`;

/** Workload `app` in namespace ns, with an HTTP port 80 -> 8080 and optionally a TCP port 5432. */
const APP = (tcp = false) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: app, namespace: ns }
spec:
  hosts: [app.ns.svc]
  ports:
    - { number: 80, name: http, protocol: HTTP, targetPort: 8080 }
${tcp ? '    - { number: 5432, name: tcp, protocol: TCP }\n' : ''}  workloadSelector: { labels: { app: app } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: app-1, namespace: ns, labels: { app: app } }
spec: { address: 10.0.0.1, serviceAccount: app }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: client-1, namespace: ns, labels: { app: client } }
spec: { address: 10.0.0.2, serviceAccount: client }
`;

const EXT_RULE = '    - to: [{ operation: { paths: ["/ext/*"] } }]\n';

const CUSTOM = (name: string, provider: string, rules = EXT_RULE) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: ns }
spec:
  selector: { matchLabels: { app: app } }
  action: CUSTOM
  provider: { name: ${provider} }
  rules:
${rules}`;

const cases: { name: string; files: Record<string, string>; expect: string[] }[] = [
  {
    name: 'a valid HTTP provider and a CUSTOM policy naming it',
    files: {
      'm.yaml': MESH('envoyExtAuthzHttp', HTTP_OK),
      's.yaml': AUTHZ_SE,
      'a.yaml': APP(),
      'p.yaml': CUSTOM('c', 'authz'),
    },
    expect: [],
  },
  {
    name: 'a CUSTOM policy naming no provider of the Mesh (at provider.name)',
    files: { 'a.yaml': APP(), 'p.yaml': CUSTOM('c', 'nope') },
    expect: ['CH0305 p.yaml:7:21'],
  },
  {
    name: 'a CUSTOM policy naming a telemetry provider',
    files: {
      'm.yaml': MESH('envoyFileAccessLog', '        path: /tmp/x.log\n'),
      'a.yaml': APP(),
      'p.yaml': CUSTOM('c', 'authz'),
    },
    expect: ['CH0305 p.yaml:7:21'],
  },
  {
    name: 'service that no ServiceEntry declares, or in another namespace (at service)',
    files: {
      'm.yaml': MESH('envoyExtAuthzHttp', '        service: ghost.sec.svc\n        port: 8000\n') +
        '    - name: other\n      envoyExtAuthzGrpc: { service: wrong/authz.sec.svc, port: 9000 }\n',
      's.yaml': AUTHZ_SE,
    },
    expect: ['CH0301 m.yaml:8:18', 'CH0301 m.yaml:11:37'],
  },
  {
    name: 'port that the ServiceEntry does not declare; gRPC on an HTTP port',
    files: {
      'm.yaml': MESH('envoyExtAuthzHttp', '        service: authz.sec.svc\n        port: 7000\n') +
        '    - name: g\n      envoyExtAuthzGrpc: { service: sec/authz.sec.svc, port: 8000 }\n',
      's.yaml': AUTHZ_SE,
    },
    expect: ['CH0304 m.yaml:8:18', 'CH0204 m.yaml:11:37'],
  },
  {
    name: 'required fields, bad values, a lone "*" header, an unknown field',
    files: {
      'm.yaml': MESH(
        'envoyExtAuthzHttp',
        '        service: "authz.sec.svc/x/y"\n        timeout: soon\n        statusOnError: "299"\n' +
          '        pathPrefix: check\n        includeRequestHeadersInCheck: ["*"]\n' +
          '        headersToUpstreamOnAllow: ["a*b"]\n' +
          '        includeRequestBodyInCheck: { allowPartialMessage: true }\n        clearRouteCache: true\n',
      ),
    },
    expect: [
      'CH0203 m.yaml:8:9',
      'CH0204 m.yaml:8:18',
      'CH0204 m.yaml:9:18',
      'CH0204 m.yaml:10:24',
      'CH0204 m.yaml:11:21',
      'CH0204 m.yaml:12:40',
      'CH0204 m.yaml:13:36',
      'CH0203 m.yaml:14:36',
      'CH0201 m.yaml:15:9',
    ],
  },
  {
    name: 'gRPC provider: the HTTP-only fields are unknown there',
    files: { 'm.yaml': MESH('envoyExtAuthzGrpc', GRPC_OK + '        pathPrefix: /x\n'), 's.yaml': AUTHZ_SE },
    expect: ['CH0201 m.yaml:10:9'],
  },
  {
    name: 'two providers with one name; a provider of two kinds',
    files: {
      'm.yaml': MESH('envoyExtAuthzHttp', HTTP_OK) +
        '    - name: authz\n      envoyExtAuthzGrpc: { service: authz.sec.svc, port: 9000 }\n' +
        '    - name: both\n      envoyExtAuthzGrpc: { service: authz.sec.svc, port: 9000 }\n' +
        '      envoyFileAccessLog: { path: /x }\n',
      's.yaml': AUTHZ_SE,
    },
    expect: ['CH0204 m.yaml:10:13', 'CH0204 m.yaml:13:26'],
  },
  {
    name: 'two CUSTOM providers on one workload (as Istio without its feature flag)',
    files: {
      'm.yaml': MESH('envoyExtAuthzHttp', HTTP_OK) +
        '    - name: g\n      envoyExtAuthzGrpc: { service: authz.sec.svc, port: 9000 }\n',
      's.yaml': AUTHZ_SE,
      'a.yaml': APP(),
      'p.yaml': CUSTOM('a', 'authz') + '---\n' + CUSTOM('b', 'g'),
    },
    expect: ['CH0403 p.yaml:17:21'],
  },
  {
    name: 'an HTTP provider whose rule may select a TCP port is refused; limited to HTTP ports it is fine',
    files: {
      'm.yaml': MESH('envoyExtAuthzHttp', HTTP_OK),
      's.yaml': AUTHZ_SE,
      'a.yaml': APP(true),
      'p.yaml': CUSTOM('tcp', 'authz') + '---\n' +
        CUSTOM('ok', 'authz', '    - to: [{ operation: { ports: ["8080"], paths: ["/x"] } }]\n'),
    },
    expect: ['CH0204 p.yaml:7:21'],
  },
  {
    name: 'a gRPC provider decides TCP ports too',
    files: {
      'm.yaml': MESH('envoyExtAuthzGrpc', GRPC_OK),
      's.yaml': AUTHZ_SE,
      'a.yaml': APP(true),
      'p.yaml': CUSTOM('c', 'authz'),
    },
    expect: [],
  },
];

for (const c of cases) {
  test(`ext-authz validation: ${c.name}`, () => {
    assert.deepEqual(diagnose(c.files), c.expect);
  });
}

const DENY_ALLOW = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny, namespace: ns }
spec:
  selector: { matchLabels: { app: app } }
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/ext/admin"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow, namespace: ns }
spec:
  selector: { matchLabels: { app: app } }
  rules: [{ to: [{ operation: { paths: ["/ext/*", "/open/*"] } }] }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: ns }
spec:
  egress: [{ hosts: ["./*"] }]
`;

const VALID = {
  'm.yaml': MESH('envoyExtAuthzGrpc', GRPC_OK + '        failOpen: true\n'),
  's.yaml': AUTHZ_SE,
  'a.yaml': APP(true),
  'p.yaml': CUSTOM('c', 'authz'),
  'd.yaml': DENY_ALLOW,
};

test('the proxy gets the authorizer cluster outside its egress scope, and CUSTOM runs before DENY and ALLOW', () => {
  const r = compile(VALID);
  assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
  const res = r.proxies.get('ns/app-1')!.resources;
  const clusters = [...res.values()].flat().filter((x) => x.typeUrl.endsWith('Cluster')).map((x) => x.name);
  assert.ok(clusters.includes('outbound|9000||authz.sec.svc'), clusters.join(', '));
  const client = [...r.proxies.get('ns/client-1')!.resources.values()].flat().map((x) => x.name);
  assert.ok(!client.includes('outbound|9000||authz.sec.svc'), 'a proxy without CUSTOM policies does not get it');
  const listener = [...res.values()].flat().find((x) => x.name === 'inbound|10.0.0.1:8080')!.json as any;
  const hcm = listener.filter_chains[0].filters[0].typed_config;
  const names = hcm.http_filters.map((f: any) => f.name);
  assert.deepEqual(names, [
    'envoy.filters.http.rbac',
    'envoy.filters.http.ext_authz',
    'envoy.filters.http.rbac',
    'envoy.filters.http.rbac',
    'envoy.filters.http.router',
  ]);
  assert.deepEqual(Object.keys(hcm.http_filters[0].typed_config.shadow_rules.policies), ['ns/c/rules[0]']);
  assert.equal(hcm.http_filters[1].typed_config.failure_mode_allow, true);
  assert.equal(hcm.http_filters[2].typed_config.rules.action, 'DENY');
  const tcp = [...res.values()].flat().find((x) => x.name === 'inbound|10.0.0.1:5432')!.json as any;
  assert.deepEqual(tcp.filter_chains[0].filters.map((f: any) => f.name), [
    'envoy.filters.network.rbac',
    'envoy.filters.network.ext_authz',
    'envoy.filters.network.rbac', // DENY: its path is left out on TCP, so it refuses every connection (Istio)
    'envoy.filters.network.rbac',
    'envoy.filters.network.tcp_proxy',
  ]);
  // On TCP the rule's path is left out (Istio lowers CUSTOM as DENY): every connection is checked.
  const shadow = tcp.filter_chains[0].filters[0].typed_config.shadow_rules.policies['ns/c/rules[0]'];
  assert.deepEqual(shadow.permissions, [{ any: true }]);
});

test('explain: a request the CUSTOM rules select depends on the provider, unless told what it answers', () => {
  const model = compile(VALID).model!;
  const q = { from: 'ns/client-1', to: 'app.ns.svc' };
  const open = explain(model, { ...q, path: '/open/x' });
  assert.equal(open.status, 200, 'not selected: DENY / ALLOW decide as before');
  assert.equal(open.destinations[0].extAuthz, undefined);
  const ext = explain(model, { ...q, path: '/ext/data' });
  assert.equal(ext.verdict, 'DEPENDS');
  assert.equal(ext.status, undefined);
  assert.equal(ext.destinations[0].extAuthz?.provider, 'authz');
  assert.equal(ext.destinations[0].extAuthz?.rule, 'ns/c/rules[0]');
  assert.match(ext.destinations[0].reason, /authz/);
  assert.equal(explain(model, { ...q, path: '/ext/data', extAuthz: 'allow' }).status, 200);
  assert.equal(explain(model, { ...q, path: '/ext/data', extAuthz: 'deny' }).status, 403);
  const admin = explain(model, { ...q, path: '/ext/admin', extAuthz: 'allow' });
  assert.equal(admin.status, 403, 'allowed by the provider, still denied by DENY');
  assert.equal(admin.destinations[0].decidedBy?.name, 'ns/deny/rules[0]');
  const admin2 = explain(model, { ...q, path: '/ext/admin' });
  assert.equal(admin2.status, 403, 'denied whatever the provider answers (DENY after it)');
  assert.equal(admin2.destinations[0].extAuthz?.provider, 'authz', 'the provider is still asked first');
  assert.equal(admin2.destinations[0].extAuthz?.ifAllowed?.decidedBy?.name, 'ns/deny/rules[0]');
});

test('graph: edges whose requests a CUSTOM provider decides are flagged', () => {
  const g = buildGraph(compile(VALID).model!);
  const e = g.edges.find((x) => x.from === 'ns/client-1' && x.to === 'ns/app-1');
  assert.ok(e, JSON.stringify(g.edges));
  assert.ok(e.flags.some((f) => f.includes('ext-authz authz')), e.flags.join('; '));
});
