/**
 * TCP between sidecars through real Envoy: a client -> its sidecar's TCP egress listener -> the echo service's
 * sidecar over mTLS (STRICT: plaintext would be refused) -> the echo server; L4 authorization by the callee (an ALLOW
 * by principal, a DENY that closes the connection); and a direct plaintext connection refused.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { compileSource } from '../../src/compiler.js';
import { explain } from '../../src/explain/explain.js';
import { buildGraph } from '../../src/explain/graph.js';
import type { MeshModel } from '../../src/model/mesh-model.js';
import { readDirectory } from '../../src/source/directory.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { PolicyDir } from '../support/mesh-fixture.js';

const IP = { db: '127.0.34.1', app: '127.0.34.2', bad: '127.0.34.3' };
const ECHO_PORT = 19341;

const caller = (name: string, ip: string) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}-1, namespace: ns, labels: { app: ${name} } }
spec: { address: ${ip}, serviceAccount: ${name} }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: ${name}, namespace: ns }
spec:
  workloadSelector: { labels: { app: ${name} } }
  egress:
    - port: { number: 15432, protocol: TCP, name: pg }
      bind: ${ip}
      hosts: ["./db.ns.svc"]
`;

const MESH = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: ns }
spec:
  hosts: [db.ns.svc]
  ports: [{ number: 5432, name: pg, protocol: TCP, targetPort: 9432 }]
  workloadSelector: { labels: { app: db } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: db-1, namespace: ns, labels: { app: db } }
spec: { address: ${IP.db}, serviceAccount: db }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: db, namespace: ns }
spec:
  workloadSelector: { labels: { app: db } }
  ingress:
    - port: { number: 9432, protocol: TCP, name: pg }
      defaultEndpoint: 127.0.0.1:${ECHO_PORT}
${caller('app', IP.app)}${caller('bad', IP.bad)}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: db-allow, namespace: ns }
spec:
  selector: { matchLabels: { app: db } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/ns/sa/app", "cluster.local/ns/ns/sa/bad"] } }]
      to: [{ operation: { ports: ["9432"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: db-deny, namespace: ns }
spec:
  selector: { matchLabels: { app: db } }
  action: DENY
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/ns/sa/bad"] } }]
`;

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
    s.on('error', () => undefined); // a reset is an answer too: the connection was closed
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

describe('TCP between sidecars through real Envoy', { timeout: 180_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  let cp: ControlPlane;
  let model: MeshModel;
  let echo: net.Server;
  /** Bytes the echo server received, per connection. */
  const received: string[] = [];
  const envoys: EnvoyProcess[] = [];

  before(async () => {
    policy.write('mesh.yaml', MESH);
    const src = readDirectory(policy.dir);
    const compiled = compileSource(src.value, src.diagnostics);
    assert.ok(compiled.ok, JSON.stringify(compiled.diagnostics));
    model = compiled.model!;
    echo = net.createServer((s) => {
      const i = received.push('') - 1;
      s.on('data', (c) => (received[i] += c.toString()));
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(ECHO_PORT, '127.0.0.1', () => r()));
    cp = await startPlane({ configDir: policy.dir, stateDir });
    for (const id of ['ns/db-1', 'ns/app-1', 'ns/bad-1']) envoys.push(await startSidecar(cp, id));
  });

  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    echo?.close();
    await cp?.stop();
    policy.cleanup();
  });

  test('a client reaches the TCP service through its sidecar, over mTLS', async () => {
    assert.equal(await exchange(IP.app, 15432, 'hello over tcp'), 'hello over tcp');
  });

  test('an L4 DENY by principal closes the connection; plaintext to the STRICT sidecar is refused', async () => {
    const before = received.length;
    assert.equal(await exchange(IP.bad, 15432, 'let me in'), '');
    assert.equal(await exchange(IP.db, 9432, 'plaintext'), '');
    // Envoy's tcp_proxy may open the upstream connection before the RBAC filter has seen the first byte; no byte
    // of a denied client ever reaches the application.
    assert.deepEqual(received.slice(before).filter((r) => r !== ''), [], 'the echo server got none of their bytes');
  });

  test('explain and graph show the TCP edges and their decisions', () => {
    const ok = explain(model, { from: 'ns/app-1', to: 'db.ns.svc:5432' });
    assert.equal(ok.verdict, 'ALLOW', JSON.stringify(ok));
    assert.equal(ok.destinations[0].transport, 'mTLS');
    assert.equal(ok.destinations[0].decidedBy?.name, 'ns/db-allow/rules[0]');
    const denied = explain(model, { from: 'ns/bad-1', to: 'db.ns.svc:5432' });
    assert.equal(denied.verdict, 'DENY');
    assert.equal(denied.destinations[0].decidedBy?.name, 'ns/db-deny/rules[0]');
    const edges = buildGraph(model).edges.map((e) => `${e.from}->${e.to}:${e.port}`);
    assert.deepEqual(edges, ['ns/app-1->ns/db-1:9432']);
  });
});
