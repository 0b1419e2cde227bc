/**
 * End to end with real Envoy processes on loopback: a caller's sidecar (Delta ADS) reaches a callee through the
 * callee's sidecar (SotW ADS); a new instance added by editing the policy files gets traffic without restarts; a bad
 * revision is rejected with its diagnostics while traffic keeps flowing; a control-plane restart does not interrupt
 * traffic and the Envoys resynchronise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { startApp, type App } from '../support/apps.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { request, waitFor } from '../support/http.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';

const NET = '127.0.3';
const APP_PORT = { a: 19301, b1: 19302, b2: 19303 };

function instance(svc: string, name: string, ip: string, appPort: number, egress: boolean): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}, namespace: shop, labels: { app: ${svc}, instance: ${name} } }
spec: { address: ${ip}, serviceAccount: ${svc} }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: ${name}, namespace: shop }
spec:
  workloadSelector: { labels: { instance: ${name} } }
  ingress:
    - port: { number: 8080, protocol: HTTP, name: http }
      defaultEndpoint: 127.0.0.1:${appPort}
${egress ? `  egress:
    - port: { number: 15001, protocol: HTTP, name: egress }
      bind: ${ip}
      hosts: ["./*"]
` : `  egress:
    - hosts: ["./*"]
`}`;
}

/** Default deny holds in this mesh: a may call b, nothing else is allowed. */
const ALLOW_A_TO_B = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: b-from-a, namespace: shop }
spec:
  selector: { matchLabels: { app: b } }
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/shop/sa/a"] } }]
`;

const SERVICES = ['a', 'b']
  .map(
    (s) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${s}, namespace: shop }
spec:
  hosts: [${s}.shop.svc]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8080 }]
  workloadSelector: { labels: { app: ${s} } }
`,
  )
  .join('---\n');

describe('mesh end to end through real Envoy', { timeout: 180_000 }, () => {
  const policy = new PolicyDir();
  let cp: ControlPlane;
  let xdsPort: number;
  let stateDir: string;
  const envoys: EnvoyProcess[] = [];
  const apps: App[] = [];

  const newPlane = (): Promise<ControlPlane> => startPlane({ configDir: policy.dir, stateDir, xdsAddress: `127.0.0.1:${xdsPort}` });
  const sidecarFor = async (id: string, sotw: boolean): Promise<EnvoyProcess> => {
    const e = await startSidecar(cp, id, { sotw, extraArgs: ['--initial-fetch-timeout', '5s'] });
    envoys.push(e);
    return e;
  };

  /** A request from a's application through a's sidecar, used as an HTTP proxy. */
  const callB = (path = '/hello') => request({ host: `${NET}.1`, port: 15001, path: `http://b.shop.svc${path}`, headers: { host: 'b.shop.svc' } });

  before(async () => {
    xdsPort = await freePort();
    stateDir = `${policy.dir}/../state-${xdsPort}`;
    policy.write('services.yaml', SERVICES);
    policy.write('authz.yaml', ALLOW_A_TO_B);
    policy.write('a-1.yaml', instance('a', 'a-1', `${NET}.1`, APP_PORT.a, true));
    policy.write('b-1.yaml', instance('b', 'b-1', `${NET}.2`, APP_PORT.b1, false));
    cp = await newPlane();
    apps.push(await startApp('a-1', '127.0.0.1', APP_PORT.a), await startApp('b-1', '127.0.0.1', APP_PORT.b1), await startApp('b-2', '127.0.0.1', APP_PORT.b2));
    await sidecarFor('shop/a-1', false); // Delta
    await sidecarFor('shop/b-1', true); // SotW
  });

  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.stop()));
    await cp?.stop();
    policy.cleanup();
  });

  test('a request goes through both sidecars and reaches the callee app', async () => {
    const r = await waitFor(async () => {
      const x = await callB('/hello');
      return x.status === 200 ? x : undefined;
    }, { timeoutMs: 10_000, what: 'a 200 from b through the sidecars' });
    assert.equal(r.json().app, 'b-1');
    assert.equal(r.json().path, '/hello');
    // STRICT mTLS by default: the callee sees the caller's SPIFFE id.
    assert.match(r.json().headers['x-forwarded-client-cert'], /URI=spiffe:\/\/cluster\.local\/ns\/shop\/sa\/a/);
    // Each sidecar serves its Envoy stats for Prometheus on the workload's address, port 15090.
    const prom = await request({ host: `${NET}.1`, port: 15090, path: '/stats/prometheus' });
    assert.equal(prom.status, 200);
    assert.match(prom.body, /envoy_cluster_upstream_rq_total\{[^}]*envoy_cluster_name="outbound\|80\|\|b_shop_svc"\} [1-9]/);
    const status = cp.ads.registry.all();
    assert.deepEqual(status.map((p) => [p.id, p.variant, p.connected]), [['shop/a-1', 'delta', true], ['shop/b-1', 'sotw', true]]);
  });

  test('a second instance added by editing the policy files gets traffic, no restarts', async () => {
    const t0 = Date.now();
    policy.write('b-2.yaml', instance('b', 'b-2', `${NET}.3`, APP_PORT.b2, false));
    await sidecarFor('shop/b-2', false);
    const seen = new Set<string>();
    await waitFor(async () => {
      const r = await callB();
      if (r.status === 200) seen.add(r.json().app);
      return seen.has('b-2') && seen.has('b-1');
    }, { timeoutMs: 15_000, intervalMs: 20, what: 'traffic to reach both b-1 and b-2' });
    console.log(`# policy edit -> traffic at the new instance: ${Date.now() - t0} ms (includes starting its Envoy)`);
  });

  test('a bad revision is rejected with all its diagnostics; the mesh keeps serving the last good one', async () => {
    const good = cp.current!.result.revision;
    policy.write('bad-syntax.yaml', 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: c, namespace: shop\nspec: {}\n');
    policy.write(
      'bad-refs.yaml',
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: d, namespace: shop }
spec:
  hosts: [d.shop.svc]
  prots: []
  ports: [{ number: 80, name: http, protocol: HTTP }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: ghost, namespace: shop }
spec:
  egress:
    - hosts: ["./missing.shop.svc"]
`,
    );
    try {
      const rejected = await waitFor(() => cp.revisions.find((r) => r.status === 'rejected' && r.diagnostics.length >= 3), { timeoutMs: 5000, what: 'the bad revision to be rejected' });
      const at = (code: string) => rejected.diagnostics.filter((d) => d.code === code).map((d) => `${d.location?.file}:${d.location?.line}`);
      assert.deepEqual(at('CH0102').slice(0, 1), ['bad-syntax.yaml:4']);
      assert.deepEqual(at('CH0201'), ['bad-refs.yaml:6']);
      assert.deepEqual(at('CH0301'), ['bad-refs.yaml:14']);
      assert.equal(cp.current!.result.revision, good, 'the last good revision is still the one served');
      for (let i = 0; i < 5; i++) assert.equal((await callB()).status, 200);
    } finally {
      policy.remove('bad-syntax.yaml');
      policy.remove('bad-refs.yaml');
    }
    await waitFor(() => cp.current!.result.revision === good && cp.revisions[cp.revisions.length - 1].status === 'accepted', { timeoutMs: 5000, what: 'the fixed revision' });
  });

  test('restarting the control plane does not interrupt traffic; Envoys resynchronise', async () => {
    await cp.stop();
    for (let i = 0; i < 5; i++) assert.equal((await callB()).status, 200, 'traffic flows while the control plane is down');
    cp = await newPlane();
    await waitFor(() => cp.ads.registry.all().filter((p) => p.connected).length === 3, { timeoutMs: 20_000, what: 'all three Envoys to reconnect' });
    for (let i = 0; i < 5; i++) assert.equal((await callB()).status, 200);
    // And the new control plane drives them: remove b-2 and traffic only reaches b-1.
    policy.remove('b-2.yaml');
    await waitFor(async () => {
      const apps = new Set<string>();
      for (let i = 0; i < 6; i++) apps.add((await callB()).json().app);
      return apps.size === 1 && apps.has('b-1');
    }, { timeoutMs: 10_000, what: 'b-2 to leave the load balancing set' });
  });
});
