/**
 * Istio's "Secure Gateways" task (ingress TLS) as documented: its Gateway and VirtualService YAML unchanged, with
 * only the registry Kubernetes would provide added (ServiceEntry, WorkloadEntries, explicit-mode plumbing) and the
 * credential the task creates as a Kubernetes secret written into --credentials-dir instead. A client with the
 * task's CA reaches httpbin's /status and /delay through the gateway on port 443 by SNI httpbin.example.com; other
 * paths get 404, another SNI no handshake, and the backend is reached over mTLS only.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { startApp, type App } from '../support/apps.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { request, waitFor } from '../support/http.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';
import { httpsRequest, testCa, testLeaf, writeCredential } from '../support/tls.js';

/** The task's Gateway and VirtualService (istio.io, "Secure Gateways", single host; Apache-2.0 text). */
const TASK = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway # use istio default ingress gateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    tls:
      mode: SIMPLE
      credentialName: httpbin-credential # must be the same as secret
    hosts:
    - httpbin.example.com
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts:
  - "httpbin.example.com"
  gateways:
  - mygateway
  http:
  - match:
    - uri:
        prefix: /status
    - uri:
        prefix: /delay
    route:
    - destination:
        port:
          number: 8000
        host: httpbin
`;

const IP = { gateway: '127.0.56.1', httpbin: '127.0.56.2', app: '127.0.56.3' };

/** What Kubernetes would provide: the httpbin service and pod, the gateway pod, Istio's ALLOW default. */
const registry = (appPort: number) => `apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec:
  authorization: { default: ALLOW } # Istio's default posture; Chancery's own is DENY
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: istio-ingressgateway-1, namespace: istio-system, labels: { istio: ingressgateway } }
spec: { address: ${IP.gateway}, serviceAccount: istio-ingressgateway }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: httpbin }
spec:
  hosts: [httpbin]
  ports: [{ number: 8000, name: http, protocol: HTTP, targetPort: 8080 }]
  workloadSelector: { labels: { app: httpbin } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: httpbin-1, labels: { app: httpbin } }
spec: { address: ${IP.httpbin}, serviceAccount: httpbin }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: httpbin }
spec:
  workloadSelector: { labels: { app: httpbin } }
  ingress:
    - port: { number: 8080, protocol: HTTP, name: http }
      defaultEndpoint: ${IP.app}:${appPort}
`;

describe("Istio's secure gateway (ingress TLS) YAML, unchanged", { timeout: 120_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  const credentialsDir = `${policy.dir}-credentials`;
  // The task's `openssl` steps: an example.com root, and httpbin.example.com's certificate signed by it.
  const exampleCa = testCa('example.com');
  const httpbinCert = testLeaf(exampleCa, ['httpbin.example.com']);
  let cp: ControlPlane;
  let app: App;
  const envoys: EnvoyProcess[] = [];

  const curl = (path: string, servername = 'httpbin.example.com') =>
    httpsRequest({ host: IP.gateway, port: 443, servername, path, ca: exampleCa.certPem });

  before(async () => {
    const appPort = await freePort(IP.app);
    writeCredential(credentialsDir, 'httpbin-credential', httpbinCert);
    policy.write('samples/secure-gateway.yaml', TASK).write('registry.yaml', registry(appPort));
    app = await startApp({ name: 'httpbin-1', host: IP.app, port: appPort });
    cp = await startPlane({ configDir: policy.dir, stateDir, credentialsDir });
    assert.equal(cp.current?.result.ok, true, JSON.stringify(cp.revisions.at(-1)?.diagnostics));
    envoys.push(await startSidecar(cp, 'istio-system/istio-ingressgateway-1'));
    envoys.push(await startSidecar(cp, 'default/httpbin-1'));
  });

  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await app?.stop();
    await cp?.stop();
    policy.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(credentialsDir, { recursive: true, force: true });
  });

  test("the task's curl: /status/418 through the gateway on 443, TLS with the task's certificate", async () => {
    const r = await waitFor(
      async () => {
        const x = await curl('/status/418').catch(() => undefined);
        return x?.status === 200 ? x : undefined;
      },
      { timeoutMs: 20_000, what: '/status/418 through the secure gateway' },
    );
    assert.equal(r.serverSerial, httpbinCert.serial, 'the gateway presents httpbin-credential');
    assert.equal(r.json().app, 'httpbin-1');
    assert.equal(r.json().path, '/status/418');
    assert.match(r.json().headers['x-forwarded-client-cert'], /sa\/istio-ingressgateway/, 'gateway -> httpbin: mTLS');
    assert.equal((await curl('/delay/1')).status, 200);
  });

  test('only the routed paths, only the served SNI, and no plaintext way around the gateway', async () => {
    assert.equal((await curl('/headers')).status, 404, 'a path the VirtualService does not route');
    await assert.rejects(curl('/status/200', 'other.example.com'), 'no server for another SNI');
    await assert.rejects(request({ host: IP.httpbin, port: 8080, path: '/status/200' }), 'httpbin is mTLS only');
  });
});
