/**
 * Incremental compilation: after each edit, a compile that reuses the previous result must produce exactly what a
 * compile from scratch produces, for every proxy, while compiling only the proxies the edit affects. The edits
 * touch every kind of dependency (services, wildcard scopes, routes, subsets, clusters, each policy kind, workloads,
 * the Mesh), and the synthetic benchmark mesh checks the counts at a size where reuse matters.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compileSource, type CompileResult } from '../src/compiler.js';
import type { PolicySource } from '../src/source/source-file.js';
import { proxyFile, serviceFile, type MeshSize } from '../bench/mesh.js';

type Files = Map<string, string>;

function readTree(dir: string, base = dir, out: Files = new Map()): Files {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) readTree(p, base, out);
    else out.set(path.relative(base, p), readFileSync(p, 'utf8'));
  }
  return out;
}

let n = 0;
const sourceOf = (files: Files): PolicySource => ({
  revision: `r${++n}`,
  files: [...files].sort().map(([p, text]) => ({ path: p, text })),
});
// Origins name the revision at which their line was read; a reused proxy may name an earlier one, for the same line.
const noRevision = (k: string, v: unknown) =>
  k === 'revision' && typeof v === 'string' && /^r\d+$/.test(v) ? undefined : v;
const shape = (r: CompileResult) =>
  [...r.proxies].map(([id, p]) => [
    id,
    JSON.stringify({ ...p.ir, revision: undefined }, noRevision),
    JSON.stringify(
      [...p.resources].map(([t, rs]) => [t, rs.map((x) => [x.name, x.json, x.origins])]),
      noRevision,
    ),
  ]);

type Check = () => void;

/**
 * Compiles `files` incrementally and from scratch, asserts they agree, and returns the incremental result. With
 * `deferred`, the full compile and the comparison wait there until the caller runs them: the process-wide caches
 * (shared clusters) then see one model after another, as in a server, and carry their entries over.
 */
function step(files: Files, previous: CompileResult | undefined, what: string, deferred?: Check[]): CompileResult {
  const src = sourceOf(files);
  const inc = compileSource(src, [], previous);
  const a = shape(inc);
  const compare = () => compareWithFull(src, inc, a, what);
  if (deferred) deferred.push(compare);
  else compare();
  return inc;
}

function compareWithFull(src: PolicySource, inc: CompileResult, a: ReturnType<typeof shape>, what: string): void {
  const full = compileSource(src);
  assert.ok(full.ok, `${what}: ${JSON.stringify(full.diagnostics.filter((d) => d.severity === 'error'))}`);
  assert.equal(inc.revision, full.revision);
  // Checks memoized across revisions (host checks of unchanged Sidecars) must report what a full compile reports.
  assert.deepEqual(inc.diagnostics, full.diagnostics, `${what}: diagnostics`);
  const b = shape(full);
  assert.deepEqual(
    a.map((x) => x[0]),
    b.map((x) => x[0]),
    `${what}: proxies`,
  );
  for (let i = 0; i < a.length; i++) {
    assert.ok(a[i][1] === b[i][1], `${what}: IR of ${a[i][0]} differs from a full compile`);
    assert.ok(a[i][2] === b[i][2], `${what}: resources of ${a[i][0]} differ from a full compile`);
  }
}

const edit = (files: Files, file: string, from: string | RegExp, to: string) => {
  const text = files.get(file)!;
  const next = text.replace(from, to);
  assert.notEqual(next, text, `edit of ${file} found nothing to replace`);
  files.set(file, next);
};

const FRONTEND_GET = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: fe, namespace: shop }
spec:
  selector: { matchLabels: { app: frontend } }
  rules: [{ to: [{ operation: { methods: [GET] } }] }]
`;

const NAMESPACE_JWT = `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: ns, namespace: shop }
spec:
  jwtRules: [{ issuer: "https://ns.example", jwksUri: "https://ns.example/jwks" }]
`;

for (const chained of [false, true]) {
  const how = chained ? ', compiles chained' : '';
  const name = 'incremental compile equals a full compile after every kind of edit, compiling only what it affects';
  test(`${name}${how}`, () => {
    const deferred: Check[] = [];
    everyKindOfEdit(chained ? deferred : undefined);
    for (const check of deferred) check();
  });
}

function everyKindOfEdit(deferred?: Check[]): void {
  const files = readTree('examples/mesh');
  let r = step(files, undefined, 'initial', deferred);
  assert.equal(r.compiled, 4);
  const expect = (what: string, apply: () => void, compiled: string[]) => {
    const before = r;
    apply();
    r = step(files, before, what, deferred);
    const recompiled = [...r.proxies]
      .filter(([id, p]) => before.proxies.get(id)?.resources !== p.resources)
      .map(([id]) => id)
      .sort();
    assert.deepEqual(recompiled, compiled.sort(), `${what}: recompiled proxies`);
    assert.equal(r.compiled, compiled.length);
  };
  const all = ['shop/frontend-1', 'shop/backend-1', 'shop/backend-2'];
  const backends = ['shop/backend-1', 'shop/backend-2'];
  // The ingress gateway routes to backend.shop.svc (no subset): it shares that cluster, not the sidecars' routes.
  const gateway = 'istio-system/ingress-1';

  expect('a comment', () => files.set('mesh.yaml', files.get('mesh.yaml') + '# nothing\n'), []);
  expect('authorization rule', () => edit(files, 'shop/authorization.yaml', '"/admin/*"', '"/internal/*"'), backends);
  expect('new policy selecting the frontend', () => files.set('shop/frontend-authz.yaml', FRONTEND_GET), [
    'shop/frontend-1',
  ]);
  // Per-workload policy values are carried over from the previous list unless an added or removed policy selects
  // the workload (ir/dependencies.ts): namespace-wide and mesh-wide policies select without a selector.
  const policy = (ns: string, name: string, selector: string) =>
    `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name}, namespace: ${ns} }\n` +
    `spec:\n${selector}  rules: [{ to: [{ operation: { methods: [GET] } }] }]\n`;
  expect('a namespace-wide policy', () => files.set('shop/ns-authz.yaml', policy('shop', 'ns', '')), all);
  expect('a mesh-wide policy', () => files.set('istio-system/mesh-authz.yaml', policy('istio-system', 'm', '')), [
    ...all,
    gateway,
  ]);
  // As Istio attaches it: a root-namespace policy with a selector selects the matching workloads of every namespace.
  expect(
    'a root-namespace policy with a selector selects in every namespace',
    () =>
      files.set(
        'istio-system/gw-authz.yaml',
        policy('istio-system', 'gw', '  selector: { matchLabels: { app: frontend } }\n'),
      ),
    ['shop/frontend-1'],
  );
  // An empty selector selects like none (applicable indexes it so): mesh-wide from the root namespace.
  expect(
    'a root-namespace policy with an empty selector',
    () => files.set('istio-system/empty-authz.yaml', policy('istio-system', 'e', '  selector: { matchLabels: {} }\n')),
    [...all, gateway],
  );
  expect('policies removed', () => files.delete('istio-system/empty-authz.yaml'), [...all, gateway]);
  expect(
    'policies removed',
    () => {
      files.delete('shop/ns-authz.yaml');
      files.delete('istio-system/mesh-authz.yaml');
      files.delete('istio-system/gw-authz.yaml');
    },
    [...all, gateway],
  );
  expect('the frontend policy removed', () => files.delete('shop/frontend-authz.yaml'), ['shop/frontend-1']);
  expect('the frontend policy back', () => files.set('shop/frontend-authz.yaml', FRONTEND_GET), ['shop/frontend-1']);
  // The backends reach backend.shop.svc through their ./* egress, so its routes are theirs too.
  expect(
    'route weights',
    () => edit(files, 'shop/traffic.yaml', /weight: 90([\s\S]*)weight: 10/, 'weight: 80$1weight: 20'),
    all,
  );
  expect(
    'destination rule',
    () => edit(files, 'shop/traffic.yaml', 'consecutive5xxErrors: 5', 'consecutive5xxErrors: 7'),
    [...all, gateway],
  );
  expect('a route bound only to the gateway', () => edit(files, 'shop/ingress.yaml', 'timeout: 5s', 'timeout: 6s'), [
    gateway,
  ]);
  expect(
    "a gateway server's credential",
    () => edit(files, 'istio-system/gateway.yaml', 'credentialName: shop-example', 'credentialName: shop-example-2'),
    [gateway],
  );
  expect(
    "the gateway's own authorization",
    () => edit(files, 'istio-system/gateway.yaml', '"203.0.113.0/24"', '"198.51.100.0/24"'),
    [gateway],
  );
  const payments =
    'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: payments, namespace: shop }\nspec:\n  hosts: [payments.shop.svc]\n  ports: [{ number: 80, name: http, protocol: HTTP }]\n  endpoints: [{ address: 10.0.0.1 }]\n';
  // A host naming an empty namespace is a warning; the host checks are remembered while services keep their shape.
  expect('a warning', () => edit(files, 'shop/sidecars.yaml', 'hosts: ["./*"]', 'hosts: ["./*", "empty/*"]'), [
    'shop/backend-1',
  ]);
  assert.ok(r.diagnostics.some((d) => d.code === 'CH0302'));
  expect('a new service joins the wildcard scopes only', () => files.set('shop/payments.yaml', payments), backends);
  expect('endpoint change', () => files.set('shop/payments.yaml', payments.replace('10.0.0.1', '10.0.0.2')), backends);
  assert.ok(r.diagnostics.some((d) => d.code === 'CH0302'));
  expect('the warning fixed', () => edit(files, 'shop/sidecars.yaml', ', "empty/*"', ''), ['shop/backend-1']);
  expect(
    'egress host added',
    () => edit(files, 'shop/sidecars.yaml', '"./backend.shop.svc"', '"./backend.shop.svc", "./payments.shop.svc"'),
    ['shop/frontend-1'],
  );
  const pa =
    'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: b, namespace: shop }\nspec:\n  selector: { matchLabels: { app: backend } }\n  mtls: { mode: PERMISSIVE }\n';
  // PERMISSIVE changes what the backends accept; their clients still originate mTLS, so nothing else changes.
  expect('peer authentication PERMISSIVE', () => files.set('shop/pa.yaml', pa), backends);
  // mTLS off on one backend port: its inbound and every client's cluster to it change (no TLS origination).
  expect('peer authentication', () => files.set('shop/pa.yaml', pa.replace('PERMISSIVE', 'DISABLE')), [
    ...all,
    gateway,
  ]);
  expect('rate limit', () => edit(files, 'shop/traffic.yaml', 'requests: 50', 'requests: 60'), backends);
  expect(
    'service account of an endpoint',
    () => {
      edit(files, 'shop/workloads.yaml', 'serviceAccount: backend\n---', 'serviceAccount: backend-one\n---');
      files.delete('shop/pa.yaml');
    },
    [...all, gateway],
  );
  expect(
    'telemetry',
    () =>
      files.set(
        'shop/telemetry.yaml',
        'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: { name: quiet, namespace: shop }\nspec:\n  selector: { matchLabels: { app: frontend } }\n  accessLogging: [{ disabled: true }]\n',
      ),
    ['shop/frontend-1'],
  );
  expect(
    'request authentication',
    () =>
      files.set(
        'shop/jwt.yaml',
        'apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: { name: jwt, namespace: shop }\nspec:\n  selector: { matchLabels: { app: backend } }\n  jwtRules: [{ issuer: "https://issuer.example", jwksUri: "https://issuer.example/jwks" }]\n',
      ),
    backends,
  );
  expect(
    'request authentication issuer',
    () => edit(files, 'shop/jwt.yaml', 'issuer: "https://issuer.example"', 'issuer: "https://other.example"'),
    backends,
  );
  expect('a namespace-wide request authentication', () => files.set('shop/jwt-ns.yaml', NAMESPACE_JWT), [
    'shop/frontend-1',
    ...backends,
  ]);
  expect('the namespace-wide request authentication removed', () => files.delete('shop/jwt-ns.yaml'), [
    'shop/frontend-1',
    ...backends,
  ]);
  expect(
    'service removed with the egress host naming it',
    () => {
      files.delete('shop/payments.yaml');
      edit(files, 'shop/sidecars.yaml', ', "./payments.shop.svc"', '');
    },
    all,
  );
  // A workload without a Sidecar reaches every service of the mesh.
  expect(
    'a workload without a Sidecar',
    () =>
      files.set(
        'ops/tools.yaml',
        'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: { name: tools-1, namespace: ops, labels: { app: tools } }\nspec: { address: 127.0.0.31 }\n',
      ),
    ['ops/tools-1'],
  );
  expect(
    'a service in another namespace',
    () =>
      files.set(
        'ops/metrics.yaml',
        'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: metrics, namespace: ops }\nspec:\n  hosts: [metrics.ops.svc]\n  ports: [{ number: 80, name: http, protocol: HTTP }]\n  endpoints: [{ address: 10.0.1.1 }]\n',
      ),
    ['ops/tools-1'],
  );
  expect(
    'destination ports',
    () => edit(files, 'shop/traffic.yaml', /subset: (v\d) \}/g, 'subset: $1, port: { number: 80 } }'),
    [...all, 'ops/tools-1'],
  );
  expect(
    'a new port of a service named by host',
    () =>
      edit(
        files,
        'shop/services.yaml',
        /(backend\.shop\.svc\][\s\S]*targetPort: 8080 \})/,
        '$1\n    - { number: 8081, name: http-alt, protocol: HTTP }',
      ),
    [...all, 'ops/tools-1', gateway],
  );
  all.push('ops/tools-1', gateway);
  expect('mesh settings', () => edit(files, 'mesh.yaml', 'default: DENY', 'default: ALLOW'), all);
  expect(
    'workload removed',
    () => {
      edit(
        files,
        'shop/workloads.yaml',
        /---\napiVersion: networking.istio.io\/v1\nkind: WorkloadEntry\nmetadata:\n  name: backend-2[\s\S]*$/,
        '',
      );
      edit(
        files,
        'shop/sidecars.yaml',
        /---\napiVersion: networking.istio.io\/v1\nkind: Sidecar\nmetadata:\n  name: backend-v2[\s\S]*$/,
        '',
      );
      edit(files, 'shop/traffic.yaml', /weight: 80([\s\S]*)weight: 20/, 'weight: 100$1weight: 0');
    },
    ['shop/frontend-1', 'shop/backend-1', 'ops/tools-1', gateway],
  );
}

test('at benchmark scale an endpoint flap or a policy edit recompiles only the proxies that see it', () => {
  const size: MeshSize = { name: 'T', services: 200, endpointsPerService: 5, proxies: 200, scope: 20 };
  const files: Files = new Map();
  for (let i = 0; i < size.services; i++) files.set(`services/svc-${i}.yaml`, serviceFile(i, size.endpointsPerService));
  for (let p = 0; p < size.proxies; p++) files.set(`proxies/client-${p}.yaml`, proxyFile(p, size));
  const deferred: Check[] = [];
  let r = step(files, undefined, 'initial', deferred);
  const seeing = (host: string) =>
    [...r.proxies.values()].filter((p) =>
      p.ir.clusters.some((c) => c.key.direction === 'outbound' && c.key.host === host),
    ).length;
  const flapped = seeing('svc-5.bench.svc');
  assert.ok(flapped > 0 && flapped < 50);
  files.set('services/svc-5.yaml', serviceFile(5, size.endpointsPerService, true));
  r = step(files, r, 'endpoint flap', deferred);
  assert.equal(r.compiled, flapped);
  files.set('proxies/client-3.yaml', proxyFile(3, size, 1));
  r = step(files, r, 'policy edit', deferred);
  assert.equal(r.compiled, 1);
  for (const check of deferred) check();
});

test('a revision the checks reject reports what a full compile reports', () => {
  const files = readTree('examples/mesh');
  // The last compile before the incremental one must be `first`: the checks remember their latest inputs.
  const first = compileSource(sourceOf(files));
  // The frontend's Sidecar is unchanged, but the service its egress names is gone: its host check runs again.
  edit(files, 'shop/services.yaml', 'hosts: [backend.shop.svc]', 'hosts: [backend2.shop.svc]');
  const src = sourceOf(files);
  const [inc, full] = [compileSource(src, [], first), compileSource(src)];
  assert.equal(full.ok, false);
  assert.ok(full.diagnostics.some((d) => d.code === 'CH0301'));
  assert.deepEqual(inc.diagnostics, full.diagnostics);
});
