/**
 * ServiceEntry `addresses` in explicit mode through real Envoy: the application dials the service's address, as it
 * would in a captured mesh, and its sidecar listens there. A TCP service's Sidecar egress listener without `bind`
 * binds to the address; on the HTTP egress listener the address (and address:port) routes like the host.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { startApp, type App } from '../support/apps.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { request } from '../support/http.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';

const IP = { caller: '127.0.52.70', server: '127.0.52.71', tcpVip: '127.0.52.72', httpVip: '127.0.52.73' };

/** Connects, sends `data`, and resolves with what came back before the connection closed ('' if nothing). */
function exchange(host: string, port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`${host}:${port}: no answer and no close within 5 s`));
    }, 5000);
    s.on('connect', () => s.write(data));
    s.on('data', (c) => {
      got += c.toString();
      if (got.length >= data.length) s.end();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

const mesh = (p: { echo: number; http: number }) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: caller-1, namespace: ns, labels: { app: caller } }
spec: { address: ${IP.caller}, serviceAccount: caller }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: caller, namespace: ns }
spec:
  workloadSelector: { labels: { app: caller } }
  egress:
    - port: { number: 5432, protocol: TCP, name: pg }
      hosts: ["./db.example.test"]
    - port: { number: 15001, protocol: HTTP, name: http }
      bind: ${IP.caller}
      hosts: ["./api.example.test"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: ns }
spec:
  hosts: [db.example.test]
  addresses: [${IP.tcpVip}]
  location: MESH_EXTERNAL
  ports: [{ number: 5432, name: pg, protocol: TCP, targetPort: ${p.echo} }]
  resolution: STATIC
  endpoints: [{ address: ${IP.server} }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: ns }
spec:
  hosts: [api.example.test]
  addresses: [${IP.httpVip}]
  location: MESH_EXTERNAL
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: ${p.http} }]
  resolution: STATIC
  endpoints: [{ address: ${IP.server} }]
`;

describe('ServiceEntry addresses through real Envoy (explicit mode)', { timeout: 120_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  let cp: ControlPlane;
  let envoy: EnvoyProcess;
  let echo: net.Server;
  let app: App;

  before(async () => {
    echo = net.createServer((s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, IP.server, () => r()));
    const ports = { echo: (echo.address() as net.AddressInfo).port, http: await freePort(IP.server) };
    app = await startApp({ name: 'api', host: IP.server, port: ports.http });
    policy.write('mesh.yaml', mesh(ports));
    cp = await startPlane({ configDir: policy.dir, stateDir });
    assert.equal(cp.current?.result.ok, true, JSON.stringify(cp.revisions.at(-1)?.diagnostics));
    envoy = await startSidecar(cp, 'ns/caller-1');
  });

  after(async () => {
    await envoy?.stop();
    echo?.close();
    await app?.stop();
    await cp?.stop();
    policy.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });

  test("TCP: the application dials the service's address; its sidecar listens there and forwards", async () => {
    assert.equal(await exchange(IP.tcpVip, 5432, 'hello vip'), 'hello vip');
  });

  test('HTTP: a request for the address routes like one for the host', async () => {
    for (const host of [IP.httpVip, `${IP.httpVip}:80`, 'api.example.test']) {
      const r = await request({ host: IP.caller, port: 15001, path: `http://${host}/x`, headers: { host } });
      assert.equal(r.status, 200, `${host}: ${r.body}`);
    }
  });
});
