/**
 * The egress gateway through real Envoy and real TLS, as Istio's "Egress Gateways with TLS Origination" task
 * documents it: the application sends plain HTTP to its sidecar, which routes edition.cnn.com to the egress
 * gateway over mTLS (DestinationRule subset with ISTIO_MUTUAL and sni); the gateway's ISTIO_MUTUAL server
 * terminates that mTLS with its own SVID and routes on to the external host, where a DestinationRule originates
 * TLS (SIMPLE, verified against the test's CA) to an HTTPS server the test starts. The gateway's
 * AuthorizationPolicy admits one caller by principal; another caller, plaintext, and foreign certificates do not
 * get through. Only ServiceEntries and WorkloadEntries (and caCertificates for the test's CA) are added.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { compileSource } from '../../src/compiler.js';
import { explain } from '../../src/explain/explain.js';
import { buildGraph } from '../../src/explain/graph.js';
import { readDirectory } from '../../src/source/directory.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { request, waitFor } from '../support/http.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { testCa, testLeaf } from '../support/tls.js';

const IP = { egress: '127.0.51.11', sleep: '127.0.51.12', other: '127.0.51.13', cnn: '127.0.51.14' };

/** The task's Gateway, DestinationRules and VirtualService, as documented (caCertificates added for the test CA). */
const TASK = (caFile: string) => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 80
      name: https-port-for-tls-origination
      protocol: HTTPS
    hosts:
    - edition.cnn.com
    tls:
      mode: ISTIO_MUTUAL
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
      portLevelSettings:
      - port:
          number: 80
        tls:
          mode: ISTIO_MUTUAL
          sni: edition.cnn.com
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts:
  - edition.cnn.com
  gateways:
  - istio-egressgateway
  - mesh
  http:
  - match:
    - gateways:
      - mesh
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port:
          number: 80
      weight: 100
  - match:
    - gateways:
      - istio-egressgateway
      port: 80
    route:
    - destination:
        host: edition.cnn.com
        port:
          number: 443
      weight: 100
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: originate-tls-for-edition-cnn-com
spec:
  host: edition.cnn.com
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    portLevelSettings:
    - port:
        number: 443
      tls:
        mode: SIMPLE # initiates HTTPS for connections to edition.cnn.com
        caCertificates: ${caFile}
`;

/** The registry Kubernetes would provide: edition.cnn.com (at the test's server), the gateway, two callers. */
const registry = (cnnPort: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: cnn }
spec:
  hosts: [edition.cnn.com]
  location: MESH_EXTERNAL
  ports:
    - { number: 80, name: http-port, protocol: HTTP }
    - { number: 443, name: https, protocol: HTTPS, targetPort: ${cnnPort} }
  resolution: STATIC
  endpoints: [{ address: ${IP.cnn} }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: istio-egressgateway, namespace: istio-system }
spec:
  hosts: [istio-egressgateway.istio-system.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{ number: 80, name: http2, protocol: HTTP }]
  workloadSelector: { labels: { istio: egressgateway } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: egressgateway-1, namespace: istio-system, labels: { istio: egressgateway } }
spec: { address: ${IP.egress}, serviceAccount: istio-egressgateway }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: sleep-1, labels: { app: sleep } }
spec: { address: ${IP.sleep}, serviceAccount: sleep }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: other-1, labels: { app: other } }
spec: { address: ${IP.other}, serviceAccount: other }
---
# Only sleep may leave the mesh through the egress gateway (Chancery's default posture denies everyone else).
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: egress-allow-sleep, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: egressgateway } }
  rules: [{ from: [{ source: { principals: [cluster.local/ns/default/sa/sleep] } }] }]
`;

interface Seen {
  sni: unknown;
  host?: string;
  path?: string;
}

describe('egress gateway with TLS origination (Istio task) through real Envoy', { timeout: 180_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  const ca = testCa('egress-ca.test');
  const cnnCert = testLeaf(ca, ['edition.cnn.com']);
  const caFile = `${policy.dir}-ca.pem`;
  const seen: Seen[] = [];
  const envoys: EnvoyProcess[] = [];
  let cnn: https.Server;
  let cp: ControlPlane;

  const curl = (from: 'sleep' | 'other', path = '/politics') =>
    request({ host: IP[from], port: 15001, path, headers: { host: 'edition.cnn.com' } });

  before(async () => {
    writeFileSync(caFile, ca.certPem);
    cnn = https.createServer({ cert: cnnCert.certPem, key: cnnCert.keyPem }, (req, res) => {
      const sni = (req.socket as tls.TLSSocket).servername;
      seen.push({ sni, host: req.headers.host, path: req.url });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ sni, host: req.headers.host, path: req.url }));
    });
    await new Promise<void>((r) => cnn.listen(0, IP.cnn, () => r()));
    const cnnPort = (cnn.address() as AddressInfo).port;
    policy.write('registry.yaml', registry(cnnPort)).write('egress-tls-origination.yaml', TASK(caFile));
    cp = await startPlane({ configDir: policy.dir, stateDir });
    assert.equal(cp.current?.result.ok, true, JSON.stringify(cp.revisions.at(-1)?.diagnostics));
    for (const id of ['istio-system/egressgateway-1', 'default/sleep-1', 'default/other-1']) {
      envoys.push(await startSidecar(cp, id));
    }
    const through = async () => (await curl('sleep', '/ready')).status === 200;
    await waitFor(through, { timeoutMs: 20_000, what: 'edition.cnn.com through the egress gateway' });
  });

  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    cnn?.close();
    await cp?.stop();
    policy.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(caFile, { force: true });
  });

  test('plain HTTP from the app -> sidecar -> egress gateway (mTLS) -> TLS originated to the host', async () => {
    const before = seen.length;
    const r = await curl('sleep');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json(), { sni: 'edition.cnn.com', host: 'edition.cnn.com', path: '/politics' });
    assert.equal(seen.length, before + 1, 'the request arrived once at the external server');
  });

  test("the gateway's AuthorizationPolicy: another mesh caller is denied by principal", async () => {
    const before = seen.length;
    const r = await curl('other');
    assert.equal(r.status, 403, r.body);
    assert.match(r.body, /RBAC/);
    // Nor does its sidecar offer another way out: the HTTPS port is no HTTP route of the sidecar's.
    const direct = await request({ host: IP.other, port: 15001, path: '/', headers: { host: 'edition.cnn.com:443' } });
    assert.equal(direct.status, 404);
    assert.equal(seen.length, before, 'nothing of it reached the external server');
  });

  test('the ISTIO_MUTUAL server takes no plaintext, no client without a certificate, no foreign CA', async () => {
    const before = seen.length;
    await assert.rejects(request({ host: IP.egress, port: 80, path: '/', headers: { host: 'edition.cnn.com' } }));
    const foreign = testLeaf(testCa('foreign.test'), ['sleep.default']);
    for (const client of [undefined, foreign]) {
      const handshake = new Promise<void>((resolve, reject) => {
        const s = tls.connect({
          host: IP.egress,
          port: 80,
          servername: 'edition.cnn.com',
          rejectUnauthorized: false,
          ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
        });
        s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nhost: edition.cnn.com\r\n\r\n'));
        s.on('data', (d) => (d.toString().startsWith('HTTP/1.1 200') ? resolve() : reject(new Error(d.toString()))));
        s.on('error', reject);
        s.on('close', () => reject(new Error('closed')));
      });
      await assert.rejects(handshake, `a client ${client ? 'of a foreign CA' : 'without a certificate'} is refused`);
    }
    assert.equal(seen.length, before);
  });

  test('explain and graph follow the request through the egress gateway, as Envoy answers it', async () => {
    const src = readDirectory(policy.dir);
    const model = compileSource(src.value, src.diagnostics).model!;
    for (const from of ['sleep', 'other'] as const) {
      const real = await curl(from);
      const e = explain(model, { from: `default/${from}-1`, to: 'edition.cnn.com', path: '/politics' });
      assert.equal(e.status, real.status, `${from}: explain said ${e.status}, Envoy ${real.status}`);
    }
    const e = explain(model, { from: 'default/sleep-1', to: 'edition.cnn.com', path: '/politics' });
    assert.equal(e.route?.name, 'default/direct-cnn-through-egress-gateway/http[0]');
    const [gw] = e.destinations;
    assert.deepEqual(
      [gw.workload, gw.transport, gw.decision, gw.decidedBy?.name],
      ['istio-system/egressgateway-1', 'mTLS', 'ALLOW', 'istio-system/egress-allow-sleep/rules[0]'],
    );
    assert.equal(gw.beyond?.route?.name, 'default/direct-cnn-through-egress-gateway/http[1]');
    assert.match(gw.beyond!.destinations[0].tls ?? '', /TLS SIMPLE originated by the gateway \(SNI edition\.cnn\.com/);
    const other = explain(model, { from: 'default/other-1', to: 'edition.cnn.com', path: '/politics' });
    assert.equal(other.destinations[0].stage, 'authorization');
    const outside = explain(model, { from: 'istio-system/egressgateway-1', to: 'edition.cnn.com:80' });
    assert.match(outside.note ?? '', /ISTIO_MUTUAL/);
    const edges = buildGraph(model).edges.map((x) => `${x.from}->${x.to}:${x.port}`);
    assert.ok(edges.includes('default/sleep-1->istio-system/egressgateway-1:80'), edges.join(' '));
    assert.ok(!edges.some((x) => x.startsWith('default/other-1->istio-system')), edges.join(' '));
    assert.ok(edges.includes('istio-system/egressgateway-1->edition.cnn.com:443'), edges.join(' '));
  });
});
