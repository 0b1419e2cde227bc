/**
 * Ingress gateways through real Envoy and real TLS: an outside client -> the gateway (a stock Envoy bootstrapped
 * like any sidecar) -> a mesh service's sidecar over mTLS -> the application. SIMPLE TLS with a credential from
 * --credentials-dir, MUTUAL with client certificates, the gateway's own AuthorizationPolicy (path, path tricks,
 * remote.ip behind one trusted proxy), httpsRedirect, a credential rotated on disk reaching new handshakes with no
 * restart (and a half-written rotation never served), a missing credential rejecting the revision while the last
 * good one keeps serving, gateway-only routes never reaching sidecars; then Istio's bookinfo gateway YAML as
 * documented, with only the registry (and explicit-mode plumbing) added.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { compileSource } from '../../src/compiler.js';
import { explain } from '../../src/explain/explain.js';
import { buildGraph } from '../../src/explain/graph.js';
import { readDirectory } from '../../src/source/directory.js';
import { startApp, type App } from '../support/apps.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { request, waitFor } from '../support/http.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';
import { httpsRequest, testCa, testLeaf, writeCredential, type HttpsRequest } from '../support/tls.js';

const IP = { gateway: '127.0.35.1', web: '127.0.35.2', app: '127.0.35.3' };
const SHOP = 'shop.example.test';
const PARTNER = 'partner.example.test';

interface Ports {
  http: number;
  https: number;
  web: number;
  app: number;
}

const gatewayYaml = (p: Ports, shopCredential = 'shop-cert') => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: ingress, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: ${p.http}, name: http, protocol: HTTP }
      hosts: ["shop/${SHOP}"]
      tls: { httpsRedirect: true }
    - port: { number: ${p.https}, name: https, protocol: HTTPS }
      hosts: ["shop/${SHOP}"]
      tls:
        mode: SIMPLE
        credentialName: ${shopCredential}
    - port: { number: ${p.https}, name: https-partner, protocol: HTTPS }
      hosts: ["shop/${PARTNER}"]
      tls: { mode: MUTUAL, credentialName: partner-cert, subjectAltNames: [client.partner.test] }
`;

const meshYaml = (p: Ports) => `apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec:
  gatewayTopology: { numTrustedProxies: 1 }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ingress-1, namespace: istio-system, labels: { istio: ingressgateway } }
spec: { address: ${IP.gateway}, serviceAccount: ingressgateway }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: shop }
spec:
  hosts: [web.shop.svc]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: ${p.web} }]
  workloadSelector: { labels: { app: web } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-1, namespace: shop, labels: { app: web } }
spec: { address: ${IP.web}, serviceAccount: web }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: web, namespace: shop }
spec:
  workloadSelector: { labels: { app: web } }
  ingress:
    - port: { number: ${p.web}, protocol: HTTP, name: http }
      defaultEndpoint: ${IP.app}:${p.app}
---
# Bound only to the gateway: the sidecars never route these hosts.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: shop }
spec:
  hosts: [${SHOP}, ${PARTNER}]
  gateways: [istio-system/ingress]
  http:
    - route: [{ destination: { host: web.shop.svc } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: web-from-ingress, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  rules:
    - from: [{ source: { principals: [cluster.local/ns/istio-system/sa/ingressgateway] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ingress-allow, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  rules:
    - to: [{ operation: { methods: [GET, POST] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ingress-deny, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: DENY
  rules:
    - to: [{ operation: { paths: ["/admin/*"] } }]
    - when: [{ key: remote.ip, values: [203.0.113.0/24] }]
`;

describe('ingress gateway through real Envoy and real TLS', { timeout: 240_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  const credentialsDir = `${policy.dir}-credentials`;
  const serverCa = testCa('server-ca.test');
  const partnerCa = testCa('partner-ca.test');
  const strangerCa = testCa('stranger-ca.test');
  let shopCert = testLeaf(serverCa, [SHOP]);
  const partnerCert = testLeaf(serverCa, [PARTNER]);
  const partnerClient = testLeaf(partnerCa, ['client.partner.test']);
  let ports: Ports;
  let cp: ControlPlane;
  let app: App;
  let gateway: EnvoyProcess;
  const envoys: EnvoyProcess[] = [];

  const shop = (o: Partial<HttpsRequest> = {}) =>
    httpsRequest({ host: IP.gateway, port: ports.https, servername: SHOP, ca: serverCa.certPem, ...o });
  const partner = (o: Partial<HttpsRequest> = {}) =>
    httpsRequest({ host: IP.gateway, port: ports.https, servername: PARTNER, ca: serverCa.certPem, ...o });

  before(async () => {
    ports = {
      http: await freePort(IP.gateway),
      https: await freePort(IP.gateway),
      web: await freePort(IP.web),
      app: await freePort(IP.app),
    };
    writeCredential(credentialsDir, 'shop-cert', shopCert);
    writeCredential(credentialsDir, 'partner-cert', partnerCert, { clientCa: partnerCa });
    policy.write('mesh.yaml', meshYaml(ports)).write('gateway.yaml', gatewayYaml(ports));
    app = await startApp({ name: 'web-1', host: IP.app, port: ports.app });
    cp = await startPlane({ configDir: policy.dir, stateDir, credentialsDir });
    assert.equal(cp.current?.result.ok, true, JSON.stringify(cp.revisions.at(-1)?.diagnostics));
    gateway = await startSidecar(cp, 'istio-system/ingress-1');
    envoys.push(gateway, await startSidecar(cp, 'shop/web-1'));
    // The gateway's clusters reach the web sidecar once both have their configuration and certificates.
    const ready = async () => (await shop({ path: '/ready' })).status === 200;
    await waitFor(ready, { timeoutMs: 20_000, what: 'a 200 through the gateway' });
  });

  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await app?.stop();
    await cp?.stop();
    policy.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(credentialsDir, { recursive: true, force: true });
  });

  test('SIMPLE TLS with the file credential, then mTLS to the mesh: the app sees the gateway identity', async () => {
    const r = await shop({ path: '/hello?x=1' });
    assert.equal(r.status, 200);
    assert.equal(r.serverSerial, shopCert.serial, 'the gateway presents the credential from --credentials-dir');
    assert.equal(r.json().path, '/hello?x=1');
    const gatewayId = /URI=spiffe:\/\/cluster\.local\/ns\/istio-system\/sa\/ingressgateway/;
    assert.match(r.json().headers['x-forwarded-client-cert'], gatewayId);
    // The mesh behind the gateway is STRICT: nothing but the gateway's mTLS reaches the web sidecar.
    await assert.rejects(request({ host: IP.web, port: ports.web, path: '/hello' }));
  });

  test('MUTUAL: no client certificate, or one of another CA, is refused; the partner CA\'s gets through', async () => {
    await assert.rejects(partner({ path: '/p' }), 'no client certificate');
    const stranger = testLeaf(strangerCa, ['client.partner.test']);
    await assert.rejects(partner({ path: '/p', client: stranger }), 'a certificate ca.crt did not sign');
    const wrongName = testLeaf(partnerCa, ['someone.else.test']);
    await assert.rejects(partner({ path: '/p', client: wrongName }), 'a SAN subjectAltNames does not list');
    const r = await partner({ path: '/p', client: partnerClient });
    assert.equal(r.status, 200);
    assert.equal(r.serverSerial, partnerCert.serial, 'SNI chose the partner server and its credential');
    assert.equal(r.json().path, '/p');
  });

  test('the gateway\'s AuthorizationPolicy denies by path, with path tricks normalised first', async () => {
    for (const path of ['/admin/users', '//admin/users', '/x/../admin/users', '/%61dmin/users', '/admin%2Fusers']) {
      const r = await shop({ path });
      assert.equal(r.status, 403, `${path} must be denied at the gateway`);
      assert.match(r.body, /RBAC/);
    }
    assert.equal((await shop({ path: '/administrator' })).status, 200);
    assert.equal((await shop({ path: '/x', method: 'DELETE' })).status, 403, 'only GET and POST are allowed');
  });

  test('remote.ip comes from X-Forwarded-For behind numTrustedProxies: 1; only the trusted hop counts', async () => {
    const before = app.count();
    assert.equal((await shop({ path: '/', headers: { 'x-forwarded-for': '203.0.113.7' } })).status, 403);
    // A client cannot hide the address the trusted proxy appended by prefixing entries of its own.
    assert.equal((await shop({ path: '/', headers: { 'x-forwarded-for': '198.51.100.9, 203.0.113.7' } })).status, 403);
    assert.equal(app.count(), before, 'no denied request reached the application');
    assert.equal((await shop({ path: '/', headers: { 'x-forwarded-for': '203.0.113.7, 198.51.100.9' } })).status, 200);
    assert.equal((await shop({ path: '/', headers: { 'x-forwarded-for': '198.51.100.9' } })).status, 200);
  });

  test('httpsRedirect: 301 to https, on the port where the Gateway serves the host over TLS', async () => {
    for (const host of [SHOP, `${SHOP}:${ports.http}`]) {
      const r = await request({ host: IP.gateway, port: ports.http, path: '/cart?id=3', headers: { host } });
      assert.equal(r.status, 301);
      assert.equal(r.headers.location, `https://${SHOP}:${ports.https}/cart?id=3`);
      const followed = await shop({ path: new URL(String(r.headers.location)).pathname });
      assert.equal(followed.status, 200, 'the redirect leads to the HTTPS server');
    }
  });

  test('a route bound only to the gateway is not in the sidecars\' route tables', async () => {
    const dump = JSON.stringify(await envoys[1].configDump());
    assert.ok(!dump.includes(SHOP), 'the web sidecar knows nothing of the gateway-only host');
    const r = await request({ host: IP.web, port: 15001, path: '/', headers: { host: SHOP } });
    assert.equal(r.status, 404);
  });

  test('a rotated credential reaches new handshakes, no restart; a half-written one is never served', async () => {
    const pid = gateway.pid;
    const next = testLeaf(serverCa, [SHOP]);
    writeCredential(credentialsDir, 'shop-cert', next, { only: 'cert' }); // tls.key still the old one
    const mismatch = () => cp.credentials!.status().find((c) => c.name === 'shop-cert' && !c.ok);
    await waitFor(mismatch, { timeoutMs: 5000, what: 'the mismatch to be seen' });
    assert.equal((await shop()).serverSerial, shopCert.serial, 'the last good certificate keeps serving');
    writeCredential(credentialsDir, 'shop-cert', next, { only: 'key' });
    const rotated = async () => (await shop()).serverSerial === next.serial;
    await waitFor(rotated, { timeoutMs: 10_000, what: 'new handshakes to present the rotated certificate' });
    assert.equal(gateway.pid, pid);
    assert.equal(gateway.exited, false, 'the gateway was not restarted');
    assert.equal((await shop({ path: '/after-rotation' })).status, 200);
    shopCert = next;
  });

  test('a missing credential rejects the revision at its line; the last good one serves until it appears', async () => {
    const good = cp.current!.result.revision;
    policy.write('gateway.yaml', gatewayYaml(ports, 'new-cert'));
    const isRejected = () =>
      cp.revisions.find((r) => r.status === 'rejected' && r.diagnostics.some((d) => d.code === 'CH0308'));
    const rejected = await waitFor(isRejected, { timeoutMs: 5000, what: 'the revision to be rejected' });
    const d = rejected.diagnostics.find((x) => x.code === 'CH0308')!;
    assert.equal(d.location?.file, 'gateway.yaml');
    assert.equal(d.location?.line, 14, 'the credentialName line');
    assert.equal(cp.current!.result.revision, good);
    assert.equal((await shop()).serverSerial, shopCert.serial);
    // The credential appears: the rejected revision is compiled again and accepted, with no policy change.
    const fresh = testLeaf(serverCa, [SHOP]);
    writeCredential(credentialsDir, 'new-cert', fresh);
    const accepted = () => cp.current!.result.revision !== good;
    await waitFor(accepted, { timeoutMs: 15_000, what: 'the revision to be accepted' });
    const served = async () => (await shop()).serverSerial === fresh.serial;
    await waitFor(served, { timeoutMs: 10_000, what: 'the new credential to be served' });
  });

  test('explain and graph: outside -> gateway -> service, with the gateway\'s own decision', async () => {
    const src = readDirectory(policy.dir);
    const model = compileSource(src.value, src.diagnostics).model!;
    // What explain predicts is what the real gateway answers.
    const asked: { path: string; method?: string; xff?: string }[] = [
      { path: '/' },
      { path: '/admin/a' },
      { path: '/a/%2e%2e/admin/b' },
      { path: '/x', method: 'DELETE' },
      { path: '/y', method: 'POST' },
      { path: '/', xff: '203.0.113.9' },
      { path: '/', xff: '203.0.113.9, 192.0.2.44' },
      { path: '/', xff: '192.0.2.44, 203.0.113.9' },
    ];
    for (const a of asked) {
      const headers = a.xff ? { 'x-forwarded-for': a.xff } : undefined;
      const real = await shop({ path: a.path, method: a.method ?? 'GET', ...(headers ? { headers } : {}) });
      const asked = { ...(a.method ? { method: a.method } : {}), ...(headers ? { headers } : {}) };
      const to = `${SHOP}:${ports.https}`;
      const e = explain(model, { from: 'istio-system/ingress-1', to, path: a.path, ...asked });
      const what = `${a.method ?? 'GET'} ${a.path} xff=${a.xff ?? '-'}`;
      assert.equal(e.status, real.status, `${what}: explain said ${e.status}, Envoy ${real.status}`);
    }
    const ok = explain(model, { from: 'istio-system/ingress-1', to: `${SHOP}:${ports.https}`, path: '/hello' });
    assert.equal(ok.verdict, 'ALLOW', JSON.stringify(ok, null, 2));
    assert.equal(ok.status, 200);
    assert.equal(ok.gateway?.server, 'istio-system/ingress/servers[1]');
    assert.equal(ok.destinations[0].workload, 'shop/web-1');
    assert.equal(ok.destinations[0].transport, 'mTLS');
    const admin = explain(model, { from: 'istio-system/ingress-1', to: `${SHOP}:${ports.https}`, path: '//admin/x' });
    assert.equal(admin.status, 403);
    assert.equal(admin.gateway?.decidedBy?.name, 'istio-system/ingress-deny/rules[0]');
    const xff = { 'x-forwarded-for': '203.0.113.7' };
    const fwd = explain(model, { from: 'istio-system/ingress-1', to: `${SHOP}:${ports.https}`, headers: xff });
    assert.equal(fwd.status, 403);
    assert.equal(fwd.gateway?.decidedBy?.name, 'istio-system/ingress-deny/rules[1]');
    const redirect = explain(model, { from: 'istio-system/ingress-1', to: `${SHOP}:${ports.http}`, path: '/cart' });
    assert.equal(redirect.status, 301);
    const edges = buildGraph(model).edges.map((e) => `${e.from}->${e.to}:${e.port}`);
    assert.ok(edges.includes(`outside->istio-system/ingress-1:${ports.https}`), edges.join(' '));
    assert.ok(edges.includes(`istio-system/ingress-1->shop/web-1:${ports.web}`), edges.join(' '));
  });
});

/** Istio's samples/bookinfo/networking/bookinfo-gateway.yaml as documented (Apache-2.0 configuration text). */
const BOOKINFO_GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
spec:
  # The selector matches the ingress gateway pod labels.
  # If you installed Istio using Helm following the standard documentation, this would be "istio=ingress"
  selector:
    istio: ingressgateway # use istio default controller
  servers:
  - port:
      number: 8080
      name: http
      protocol: HTTP
    hosts:
    - "*"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bookinfo
spec:
  hosts:
  - "*"
  gateways:
  - bookinfo-gateway
  http:
  - match:
    - uri:
        exact: /productpage
    - uri:
        prefix: /static
    - uri:
        exact: /login
    - uri:
        exact: /logout
    - uri:
        prefix: /api/v1/products
    route:
    - destination:
        host: productpage
        port:
          number: 9080
`;

const BK = { gateway: '127.0.35.11', productpage: '127.0.35.12', app: '127.0.35.13' };

/** What Kubernetes would provide: the registry, the gateway workload, explicit-mode plumbing, Istio's ALLOW default. */
const bookinfoRegistry = (appPort: number) => `apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec:
  authorization: { default: ALLOW } # Istio's default posture; Chancery's own is DENY
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ingressgateway-1, namespace: istio-system, labels: { istio: ingressgateway } }
spec: { address: ${BK.gateway}, serviceAccount: istio-ingressgateway }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: productpage }
spec:
  hosts: [productpage]
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: productpage } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: productpage-v1, labels: { app: productpage, version: v1 } }
spec: { address: ${BK.productpage}, serviceAccount: bookinfo-productpage }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: productpage }
spec:
  workloadSelector: { labels: { app: productpage } }
  ingress:
    - port: { number: 9080, protocol: HTTP, name: http }
      defaultEndpoint: ${BK.app}:${appPort}
`;

describe("Istio's bookinfo gateway YAML, unchanged", { timeout: 120_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  let cp: ControlPlane;
  let app: App;
  const envoys: EnvoyProcess[] = [];

  before(async () => {
    const appPort = await freePort(BK.app);
    policy.write('samples/bookinfo-gateway.yaml', BOOKINFO_GATEWAY).write('registry.yaml', bookinfoRegistry(appPort));
    app = await startApp({ name: 'productpage-v1', host: BK.app, port: appPort });
    cp = await startPlane({ configDir: policy.dir, stateDir });
    assert.equal(cp.current?.result.ok, true, JSON.stringify(cp.revisions.at(-1)?.diagnostics));
    envoys.push(await startSidecar(cp, 'istio-system/ingressgateway-1'));
    envoys.push(await startSidecar(cp, 'default/productpage-v1'));
  });

  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await app?.stop();
    await cp?.stop();
    policy.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });

  test('the routes of the VirtualService are served on port 8080 for any host; others get 404', async () => {
    const get = (path: string, host = 'bookinfo.example') =>
      request({ host: BK.gateway, port: 8080, path, headers: { host } });
    const r = await waitFor(async () => {
      const x = await get('/productpage');
      return x.status === 200 ? x : undefined;
    }, { timeoutMs: 20_000, what: '/productpage through the bookinfo gateway' });
    assert.equal(r.json().app, 'productpage-v1');
    const xfcc = r.json().headers['x-forwarded-client-cert'];
    assert.match(xfcc, /sa\/istio-ingressgateway/, 'gateway -> productpage over mTLS');
    for (const path of ['/static/app.css', '/login', '/logout', '/api/v1/products/1']) {
      assert.equal((await get(path, '10.0.0.1:8080')).status, 200, path);
    }
    assert.equal((await get('/productpage/x')).status, 404, 'exact match only');
    assert.equal((await get('/reviews')).status, 404);
  });
});
