/**
 * Validation tables: a few policy files in, expected diagnostics out (code and file:line:col, not wording).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileSource } from '../../src/compiler.js';

function diagnose(files: Record<string, string>): string[] {
  const r = compileSource({ revision: 'test', files: Object.entries(files).map(([path, text]) => ({ path, text })) });
  return r.diagnostics.map(
    (d) => `${d.code} ${d.location ? `${d.location.file}:${d.location.line}:${d.location.column}` : '-'}`,
  );
}

const SE = (name: string, host = `${name}.ns.svc`, extra = '') => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ns }
spec:
  hosts: [${host}]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
${extra}`;

const VS = (host: string, http: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${host}-routes, namespace: ns }
spec:
  hosts: [${host}.ns.svc]
  http:
${http}`;

const DR = (host: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${host}, namespace: ns }
spec:
  host: ${host}.ns.svc
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
`;

const WE = (ns: string, sa: string, ip = ns.length) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: w-${ns}, namespace: ${ns} }
spec:
  address: 127.0.22.${ip}
  serviceAccount: ${sa}
`;

const cases: { name: string; files: Record<string, string>; expect: string[] }[] = [
  { name: 'clean service', files: { 'a.yaml': SE('a') }, expect: [] },
  { name: 'YAML syntax error', files: { 'a.yaml': 'kind: [unclosed\n' }, expect: ['CH0102 a.yaml:2:1'] },
  { name: 'duplicate key', files: { 'a.yaml': 'kind: A\nkind: B\n' }, expect: ['CH0102 a.yaml:2:1'] },
  { name: 'unknown field', files: { 'a.yaml': SE('a', undefined, '  bogus: 1\n') }, expect: ['CH0201 a.yaml:8:3'] },
  {
    name: 'wrong type',
    files: { 'a.yaml': SE('a').replace('number: 80', 'number: "80"') },
    expect: ['CH0202 a.yaml:6:21'],
  },
  {
    name: 'missing required field',
    files: {
      'a.yaml':
        'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: a }\nspec:\n  ports: [{ number: 80, name: http }]\n  resolution: DNS\n',
    },
    expect: ['CH0203 a.yaml:5:3'],
  },
  {
    name: 'unsupported Istio field',
    files: { 'a.yaml': SE('a', undefined, '  exportTo: ["."]\n') },
    expect: ['CH0205 a.yaml:8:3'],
  },
  {
    name: 'unknown kind',
    files: { 'a.yaml': 'apiVersion: example.com/v1\nkind: Widget\nmetadata: { name: w }\n' },
    expect: ['CH0206 a.yaml:2:7'],
  },
  {
    name: 'planned kind',
    files: { 'a.yaml': 'apiVersion: networking.istio.io/v1\nkind: EnvoyFilter\nmetadata: { name: p }\n' },
    expect: ['CH0207 a.yaml:2:7'],
  },
  { name: 'not a mapping', files: { 'a.yaml': '- just\n- a list\n' }, expect: ['CH0208 a.yaml:1:1'] },
  {
    name: 'duplicate object',
    files: { 'a.yaml': SE('a'), 'b.yaml': SE('a', 'other.ns.svc') },
    expect: ['CH0401 b.yaml:1:1'],
  },
  {
    name: 'duplicate host',
    files: { 'a.yaml': SE('a'), 'b.yaml': SE('b', 'a.ns.svc') },
    expect: ['CH0402 b.yaml:5:11'],
  },
  {
    name: 'selector matching nothing is a warning',
    files: { 'a.yaml': SE('a', undefined, '  workloadSelector: { labels: { app: none } }\n') },
    expect: ['CH0303 a.yaml:8:21'],
  },
  {
    name: 'sidecar egress to an unknown service',
    files: {
      'a.yaml': SE('a'),
      's.yaml':
        'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: { name: s, namespace: ns }\nspec:\n  egress:\n    - hosts: ["./nope.ns.svc", "ghost/x.svc"]\n',
    },
    expect: ['CH0301 s.yaml:6:15', 'CH0302 s.yaml:6:32'],
  },
  {
    name: 'two listeners on one loopback address',
    files: {
      'w.yaml': `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: w1, namespace: ns }
spec: { address: 127.0.0.5 }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: s, namespace: ns }
spec:
  ingress:
    - { port: { number: 15001, protocol: HTTP }, defaultEndpoint: "127.0.0.1:9000" }
`,
    },
    expect: ['CH0404 w.yaml:6:1'],
  },
  {
    name: 'telemetry provider that the Mesh does not define',
    files: {
      't.yaml':
        'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: { name: t, namespace: ns }\nspec:\n  tracing:\n    - providers: [{ name: nope }]\n',
    },
    expect: ['CH0305 t.yaml:6:7'],
  },
  {
    name: 'route weights that do not add up to 100',
    files: {
      'a.yaml': SE('a'),
      'd.yaml': DR('a'),
      'v.yaml': VS(
        'a',
        `    - route:\n        - { destination: { host: a.ns.svc, subset: v1 }, weight: 70 }\n        - { destination: { host: a.ns.svc, subset: v2 }, weight: 20 }\n`,
      ),
    },
    expect: ['CH0303 d.yaml:7:7', 'CH0303 d.yaml:8:7', 'CH0406 v.yaml:8:9'],
  },
  {
    name: 'a route after a catch-all can never match',
    files: {
      'a.yaml': SE('a'),
      'v.yaml': VS(
        'a',
        `    - route: [{ destination: { host: a.ns.svc } }]\n    - match: [{ uri: { prefix: /x } }]\n      route: [{ destination: { host: a.ns.svc } }]\n`,
      ),
    },
    expect: ['CH0407 v.yaml:8:7'],
  },
  {
    name: 'an invalid RE2 regex',
    files: {
      'a.yaml': SE('a'),
      'v.yaml': VS(
        'a',
        `    - match: [{ uri: { regex: "(?=ahead)" } }]\n      route: [{ destination: { host: a.ns.svc } }]\n`,
      ),
    },
    expect: ['CH0204 v.yaml:7:31'],
  },
  {
    name: 'destination host and subset that do not exist',
    files: {
      'a.yaml': SE('a'),
      'd.yaml': DR('a'),
      'v.yaml': VS(
        'a',
        `    - route:\n        - { destination: { host: a.ns.svc, subset: v9 } }\n    - route: [{ destination: { host: nope.ns.svc } }]\n`,
      ),
    },
    expect: ['CH0303 d.yaml:7:7', 'CH0303 d.yaml:8:7', 'CH0306 v.yaml:8:26', 'CH0407 v.yaml:9:7', 'CH0301 v.yaml:9:30'],
  },
  {
    name: 'a DestinationRule for an unknown host',
    files: { 'd.yaml': DR('ghost') },
    expect: ['CH0301 d.yaml:5:9'],
  },
  {
    name: 'two VirtualServices for one host',
    files: {
      'a.yaml': SE('a'),
      'v.yaml': VS('a', '    - route: [{ destination: { host: a.ns.svc } }]\n'),
      'w.yaml': VS('a', '    - route: [{ destination: { host: a.ns.svc } }]\n').replace(
        'name: a-routes',
        'name: b-routes',
      ),
    },
    expect: ['CH0408 w.yaml:5:11'],
  },
  {
    name: 'an unsupported VirtualService field is rejected, not ignored',
    files: {
      'a.yaml': SE('a'),
      'v.yaml': VS('a', '    - route: [{ destination: { host: a.ns.svc } }]\n      corsPolicy: {}\n'),
    },
    expect: ['CH0205 v.yaml:8:7'],
  },
  {
    name: 'two Meshes',
    files: {
      'a.yaml':
        'apiVersion: chancery.dev/v1alpha1\nkind: Mesh\nmetadata: { name: a }\n---\napiVersion: chancery.dev/v1alpha1\nkind: Mesh\nmetadata: { name: b }\n',
    },
    expect: ['CH0405 a.yaml:5:1'],
  },
  {
    name: "a workload given the control plane's own identity (root namespace, serviceAccount chancery)",
    files: { 'w.yaml': WE('istio-system', 'chancery'), 'ok.yaml': WE('shop', 'chancery') },
    expect: ['CH0409 w.yaml:6:19'],
  },
  {
    name: 'with a Mesh, the reserved identity follows its root namespace',
    files: {
      'm.yaml': 'apiVersion: chancery.dev/v1alpha1\nkind: Mesh\nmetadata: { name: m }\nspec: { rootNamespace: mesh }\n',
      'w.yaml': WE('mesh', 'chancery'),
      'ok.yaml': WE('istio-system', 'chancery'),
    },
    expect: ['CH0409 w.yaml:6:19'],
  },
  {
    name: 'bad duration',
    files: {
      'a.yaml':
        'apiVersion: chancery.dev/v1alpha1\nkind: Mesh\nmetadata: { name: a }\nspec:\n  certificates: { ttl: soon }\n',
    },
    expect: ['CH0204 a.yaml:5:24'],
  },
  {
    // Sidecars drop headers with "_" in their names, so a DENY on one would never fire; a space is no header name.
    name: 'authorization conditions on headers that can never be seen',
    files: {
      'a.yaml': `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: a, namespace: ns }
spec:
  action: DENY
  rules:
    - when:
        - { key: "request.headers[x_user]", values: [admin] }
        - { key: "request.headers[x user]", values: [admin] }
        - { key: "request.headers[x-user]", values: [admin] }
`,
    },
    expect: ['CH0204 a.yaml:8:18', 'CH0204 a.yaml:9:18'],
  },
];

for (const c of cases) {
  test(`validation: ${c.name}`, () => {
    assert.deepEqual(diagnose(c.files), c.expect);
  });
}

test('a revision with errors publishes no proxy', () => {
  const r = compileSource({ revision: 'x', files: [{ path: 'a.yaml', text: SE('a', undefined, '  bogus: 1\n') }] });
  assert.equal(r.ok, false);
  assert.equal(r.proxies.size, 0);
});

test('the result does not depend on file order', () => {
  const files = [
    { path: 'b.yaml', text: SE('b') },
    {
      path: 'a.yaml',
      text:
        SE('a') +
        `---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: { name: w, namespace: ns, labels: { app: a } }\nspec: { address: 10.1.1.1 }\n`,
    },
  ];
  const one = compileSource({ revision: 'r', files });
  const two = compileSource({ revision: 'r', files: [...files].reverse() });
  assert.equal(JSON.stringify([...one.proxies]), JSON.stringify([...two.proxies]));
});

test('hostile YAML: an alias bomb is refused, not expanded', () => {
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 12; i++)
    bomb.push(
      `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
        .fill(`*${String.fromCharCode(96 + i)}`)
        .join(',')}]`,
    );
  const t0 = Date.now();
  const ds = diagnose({ 'bomb.yaml': bomb.join('\n') + '\n' });
  assert.ok(Date.now() - t0 < 2000, 'fails fast');
  assert.ok(
    ds.some((d) => d.startsWith('CH0102') || d.startsWith('CH0208')),
    ds.join(', '),
  );
});

test('hostile YAML: deep nesting and binary junk give diagnostics, not crashes', () => {
  assert.ok(
    diagnose({ 'deep.yaml': 'a: ' + '['.repeat(200) + ']'.repeat(200) + '\n' }).some((d) => d.startsWith('CH0102')),
  );
  assert.ok(diagnose({ 'junk.yaml': '\u0000\u0001\u0002 : : [ {\n' }).some((d) => d.startsWith('CH0102')));
});

test("Istio's bookinfo fault-injection-details-v1.yaml is accepted: a route after a catch-all is a warning", () => {
  const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: details
spec:
  hosts:
  - details
  http:
  - fault:
      abort:
        httpStatus: 555
        percentage:
          value: 100
    route:
    - destination:
        host: details
        subset: v1
  - route:
    - destination:
        host: details
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: details
spec:
  host: details
  subsets:
  - name: v1
    labels:
      version: v1
`;
  const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: details }
spec:
  hosts: [details]
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: details } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: details-v1, labels: { app: details, version: v1 } }
spec: { address: 127.0.0.5 }
`;
  const r = compileSource({
    revision: 't',
    files: [
      { path: 'vs.yaml', text: vs },
      { path: 'se.yaml', text: se },
    ],
  });
  assert.ok(r.ok, JSON.stringify(r.diagnostics));
  assert.deepEqual(
    r.diagnostics.map((d) => `${d.severity} ${d.code}`),
    ['warning CH0407'],
  );
});

test("a short host name is matched as written; the error names Istio's Kubernetes form when that is declared", () => {
  const files = [
    { path: 'se.yaml', text: SE('httpbin', 'httpbin.ns.svc.cluster.local') },
    { path: 'vs.yaml', text: VS('httpbin', '    - route: [{ destination: { host: httpbin } }]\n') },
  ];
  const r = compileSource({ revision: 't', files });
  const errors = r.diagnostics.filter((d) => d.code === 'CH0301').map((d) => d.message);
  assert.ok(errors.some((m) => m.includes('as httpbin.ns.svc.cluster.local, which is declared')), errors.join('\n'));
});
