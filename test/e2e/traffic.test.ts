/**
 * Traffic management through a real Envoy sidecar: canary split, header routing to a subset, retries, timeouts,
 * fault injection, rewrites and header changes, redirects and direct responses, circuit breaking, outlier ejection,
 * local rate limits, and Sidecar scoping. The upstream applications run without sidecars (inline ServiceEntry
 * endpoints), so every routing decision observed is the caller's sidecar's; rate limiting is on the callee's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { startApp, type App, type Behaviour } from '../support/apps.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { request, waitFor } from '../support/http.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { PolicyDir } from '../support/mesh-fixture.js';

const IP = { client: '127.0.11.1', limited: '127.0.11.2', scoped: '127.0.11.3' };
const PORT = { v1: 20101, v2: 20102, flaky: 20103, slow: 20104, cb: 20105, od1: 20106, od2: 20107, limited: 20108 };

const service = (name: string, endpoints: { port: number; labels?: Record<string, string> }[]) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: traffic }
spec:
  hosts: [${name}.traffic.svc]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints:
${endpoints.map((e) => `    - { address: 127.0.0.1, ports: { http: ${e.port} }${e.labels ? `, labels: ${JSON.stringify(e.labels)}` : ''} }`).join('\n')}
`;

const POLICY = [
  service('api', [
    { port: PORT.v1, labels: { version: 'v1' } },
    { port: PORT.v2, labels: { version: 'v2' } },
  ]),
  service('flaky', [{ port: PORT.flaky }]),
  service('slow', [{ port: PORT.slow }]),
  service('cb', [{ port: PORT.cb }]),
  service('od', [{ port: PORT.od1 }, { port: PORT.od2 }]),
  service('sticky', [{ port: PORT.v1 }, { port: PORT.v2 }]),
  `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: limited, namespace: traffic }
spec:
  hosts: [limited.traffic.svc]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8080 }]
  workloadSelector: { labels: { app: limited } }
`,
  `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: client-1, namespace: traffic, labels: { app: client } }
spec: { address: ${IP.client}, serviceAccount: client }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: scoped-1, namespace: traffic, labels: { app: scoped } }
spec: { address: ${IP.scoped}, serviceAccount: scoped }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: scoped, namespace: traffic }
spec:
  workloadSelector: { labels: { app: scoped } }
  egress:
    - port: { number: 15001, protocol: HTTP, name: egress }
      hosts: ["./api.traffic.svc"]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: limited-1, namespace: traffic, labels: { app: limited } }
spec: { address: ${IP.limited}, serviceAccount: limited }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: limited, namespace: traffic }
spec:
  workloadSelector: { labels: { app: limited } }
  ingress:
    - port: { number: 8080, protocol: HTTP, name: http }
      defaultEndpoint: 127.0.0.1:${PORT.limited}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: same-namespace, namespace: traffic }
spec:
  rules: [{ from: [{ source: { namespaces: [traffic] } }] }]
---
apiVersion: chancery.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: limited, namespace: traffic }
spec:
  selector: { matchLabels: { app: limited } }
  limits:
    - match: { path: { prefix: /free } }
      requests: 1000
    - requests: 5
      unit: minute
      status: 429
      responseHeaders: { x-chancery-ratelimited: "true" }
`,
  `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: traffic }
spec:
  host: api.traffic.svc
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: traffic }
spec:
  hosts: [api.traffic.svc]
  http:
    - match: [{ headers: { x-canary: { exact: "true" } } }]
      route: [{ destination: { host: api.traffic.svc, subset: v2 } }]
    - match: [{ uri: { prefix: /rewrite/ } }]
      rewrite: { uri: /rewritten/ }
      headers:
        request: { set: { x-added: "yes" }, remove: [x-remove-me] }
        response: { set: { x-resp: ok } }
      route: [{ destination: { host: api.traffic.svc, subset: v1 } }]
    - match: [{ uri: { prefix: /abort } }]
      fault: { abort: { httpStatus: 503, percentage: { value: 50 } } }
      route: [{ destination: { host: api.traffic.svc, subset: v1 } }]
    - match: [{ uri: { prefix: /delay } }]
      fault: { delay: { fixedDelay: 400ms, percentage: { value: 100 } } }
      route: [{ destination: { host: api.traffic.svc, subset: v1 } }]
    - match: [{ uri: { prefix: /mirror } }]
      route: [{ destination: { host: api.traffic.svc, subset: v1 } }]
      mirror: { host: api.traffic.svc, subset: v2 }
      mirrorPercentage: { value: 100 }
    - match: [{ uri: { exact: /old } }]
      redirect: { uri: /new, redirectCode: 302 }
    - match: [{ uri: { regex: "^/teapot/[0-9]+$" } }]
      directResponse: { status: 418, body: { string: "short and stout" } }
    - route:
        - { destination: { host: api.traffic.svc, subset: v1 }, weight: 90 }
        - { destination: { host: api.traffic.svc, subset: v2 }, weight: 10 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: flaky, namespace: traffic }
spec:
  hosts: [flaky.traffic.svc]
  http:
    - route: [{ destination: { host: flaky.traffic.svc } }]
      retries: { attempts: 3, retryOn: 5xx }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: slow, namespace: traffic }
spec:
  hosts: [slow.traffic.svc]
  http:
    - route: [{ destination: { host: slow.traffic.svc } }]
      timeout: 300ms
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: cb, namespace: traffic }
spec:
  host: cb.traffic.svc
  trafficPolicy:
    connectionPool:
      tcp: { maxConnections: 1 }
      http: { http1MaxPendingRequests: 1, http2MaxRequests: 1, maxRetries: 0 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: sticky, namespace: traffic }
spec:
  host: sticky.traffic.svc
  trafficPolicy:
    loadBalancer: { consistentHash: { httpHeaderName: x-user } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: od, namespace: traffic }
spec:
  host: od.traffic.svc
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100 }
`,
].join('---\n');

describe('traffic management through a real Envoy sidecar', { timeout: 180_000 }, () => {
  const policy = new PolicyDir();
  let cp: ControlPlane;
  const apps: App[] = [];
  const envoys = new Map<string, EnvoyProcess>();

  const call = (host: string, path: string, headers: Record<string, string> = {}, from = IP.client) =>
    request({ host: from, port: 15001, path: `http://${host}.traffic.svc${path}`, headers: { host: `${host}.traffic.svc`, ...headers }, timeoutMs: 10_000 });

  before(async () => {
    policy.write('traffic.yaml', POLICY);
    cp = await startPlane({ configDir: policy.dir, stateDir: `${policy.dir}-state` });
    const behaviours: [string, number, Behaviour][] = [
      ['v1', PORT.v1, { kind: 'ok' }],
      ['v2', PORT.v2, { kind: 'ok' }],
      ['flaky', PORT.flaky, { kind: 'flaky', code: 503 }],
      ['slow', PORT.slow, { kind: 'delay', ms: 2000 }],
      ['cb', PORT.cb, { kind: 'delay', ms: 1000 }],
      ['od-bad', PORT.od1, { kind: 'status', code: 500 }],
      ['od-good', PORT.od2, { kind: 'ok' }],
      ['limited', PORT.limited, { kind: 'ok' }],
    ];
    for (const [name, port, b] of behaviours) apps.push(await startApp(name, '127.0.0.1', port, b));
    for (const id of ['traffic/client-1', 'traffic/limited-1', 'traffic/scoped-1']) envoys.set(id, await startSidecar(cp, id, { extraArgs: ['--prometheus-port', '0'] }));
    await waitFor(async () => (await call('api', '/ready')).status === 200, { timeoutMs: 10_000, what: 'routes to api' });
  });

  after(async () => {
    await Promise.all([...envoys.values()].map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.stop()));
    await cp?.stop();
    policy.cleanup();
  });

  test('a 90/10 canary split lands within 4 standard deviations over 400 requests', async () => {
    const n = 400;
    let v2 = 0;
    for (let i = 0; i < n; i++) if ((await call('api', '/split')).json().app === 'v2') v2++;
    const sd = Math.sqrt(n * 0.1 * 0.9); // 6
    console.log(`# canary: ${v2}/${n} requests to v2 (expected ${n * 0.1} ± ${Math.round(4 * sd)})`);
    assert.ok(Math.abs(v2 - n * 0.1) <= 4 * sd, `${v2} of ${n} went to v2`);
  });

  test('a tagged request goes to the canary subset', async () => {
    for (let i = 0; i < 20; i++) assert.equal((await call('api', '/x', { 'x-canary': 'true' })).json().app, 'v2');
  });

  test('retries make a flaky upstream (fails every other request) succeed', async () => {
    for (let i = 0; i < 10; i++) assert.equal((await call('flaky', '/x')).status, 200);
    const served = apps.find((a) => a.name === 'flaky')!.requests.length;
    assert.ok(served >= 15, `the upstream saw the retries (${served} requests for 10 calls)`);
  });

  test('a timeout returns 504 from a slow upstream', async () => {
    const t0 = Date.now();
    const r = await call('slow', '/x');
    assert.equal(r.status, 504);
    assert.ok(Date.now() - t0 < 1500, 'it did not wait for the upstream');
  });

  test('fault abort returns the configured status at the configured percentage; fault delay adds the delay', async () => {
    const n = 200;
    let aborted = 0;
    for (let i = 0; i < n; i++) {
      const r = await call('api', '/abort');
      if (r.status === 503) aborted++;
      else assert.equal(r.status, 200);
    }
    const sd = Math.sqrt(n * 0.25);
    console.log(`# fault abort: ${aborted}/${n} aborted (expected ${n / 2} ± ${Math.round(4 * sd)})`);
    assert.ok(Math.abs(aborted - n / 2) <= 4 * sd);
    const t0 = Date.now();
    assert.equal((await call('api', '/delay')).status, 200);
    assert.ok(Date.now() - t0 >= 390, 'delayed by ~400 ms');
  });

  test('the upstream sees the rewrite and header changes; the caller sees the response header', async () => {
    const r = await call('api', '/rewrite/thing?q=1', { 'x-remove-me': 'secret' });
    const seen = r.json();
    assert.equal(seen.path, '/rewritten/thing?q=1');
    assert.equal(seen.headers['x-added'], 'yes');
    assert.equal(seen.headers['x-remove-me'], undefined);
    assert.equal(r.headers['x-resp'], 'ok');
  });

  test('mirroring sends a copy of each request to the mirror subset', async () => {
    const v2 = apps.find((a) => a.name === 'v2')!;
    const before = v2.requests.filter((r) => r.path === '/mirror/1').length;
    const r = await call('api', '/mirror/1');
    assert.equal(r.json().app, 'v1', 'the caller gets the primary answer');
    await waitFor(() => v2.requests.filter((x) => x.path === '/mirror/1').length > before, { timeoutMs: 5000, what: 'the mirrored copy at v2' });
    const copy = v2.requests.filter((x) => x.path === '/mirror/1').at(-1)!;
    assert.match(String(copy.headers.host), /-shadow$/, 'Envoy marks the shadow request');
  });

  test('consistent hashing on a header keeps each user on one instance', async () => {
    for (const user of ['alice', 'bob', 'carol', 'dave']) {
      const seen = new Set<string>();
      for (let i = 0; i < 8; i++) seen.add((await call('sticky', '/x', { 'x-user': user })).json().app);
      assert.equal(seen.size, 1, `${user} stayed on one instance`);
    }
    const spread = new Set<string>();
    for (let i = 0; i < 40; i++) spread.add((await call('sticky', '/x', { 'x-user': `u${i}` })).json().app);
    assert.equal(spread.size, 2, 'different users spread over both instances');
  });

  test('redirects and direct responses', async () => {
    const r = await call('api', '/old');
    assert.equal(r.status, 302);
    assert.match(String(r.headers.location), /\/new$/);
    const d = await call('api', '/teapot/42');
    assert.equal(d.status, 418);
    assert.equal(d.body, 'short and stout');
  });

  test('circuit breaking: concurrent requests beyond the limit get 503 with the overflow flag', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => call('cb', '/x')));
    const overflow = results.filter((r) => r.status === 503 && r.headers['x-envoy-overloaded'] === 'true');
    assert.ok(overflow.length >= 4, `${overflow.length} of 8 were rejected by the circuit breaker`);
    assert.ok(results.some((r) => r.status === 200), 'requests within the limit pass');
  });

  test('outlier detection ejects the instance that returns 5xx; traffic moves to the healthy one', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await call('od', '/x')).status);
    assert.ok(statuses.slice(0, 10).includes(500), 'the bad instance was hit at first');
    assert.deepEqual(statuses.slice(-15), Array(15).fill(200), 'then only the healthy one');
  });

  test('the rate limit returns 429 past the configured rate; requests under it pass', async () => {
    const call2 = (path: string) => call('limited', path);
    for (let i = 0; i < 5; i++) assert.equal((await call2('/x')).status, 200, `request ${i + 1} of 5 is within the limit`);
    const over = await call2('/x');
    assert.equal(over.status, 429);
    assert.equal(over.headers['x-chancery-ratelimited'], 'true');
    assert.equal((await call2('/free/x')).status, 200, 'another limit governs /free');
  });

  test('a proxy scoped by a Sidecar has no cluster for services outside its egress hosts', async () => {
    const clusters = await envoys.get('traffic/scoped-1')!.adminGet('/clusters');
    assert.match(clusters, /outbound\|80\|v1\|api\.traffic\.svc/);
    assert.doesNotMatch(clusters, /flaky|slow|cb\.traffic|od\.traffic|limited/);
    assert.equal((await call('api', '/x', {}, IP.scoped)).status, 200);
    assert.equal((await call('flaky', '/x', {}, IP.scoped)).status, 404, 'no route to an unscoped service');
  });
});
