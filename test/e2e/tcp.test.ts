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

const IP = { db: '127.0.34.1', app: '127.0.34.2', bad: '127.0.34.3', v1: '127.0.34.4', v2: '127.0.34.5' };
const ECHO_PORT = 19341;
/** The two versions of the `shift` service answer with their name, on their own application ports. */
const VERSION_PORT = { v1: 19342, v2: 19343 };

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
    - port: { number: 15433, protocol: TCP, name: shift }
      bind: ${ip}
      hosts: ["./shift.ns.svc"]
`;

const version = (v: 'v1' | 'v2') => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: shift-${v}, namespace: ns, labels: { app: shift, version: ${v} } }
spec: { address: ${IP[v]}, serviceAccount: shift }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: shift-${v}, namespace: ns }
spec:
  workloadSelector: { labels: { app: shift, version: ${v} } }
  ingress:
    - port: { number: 9433, protocol: TCP, name: tcp }
      defaultEndpoint: 127.0.0.1:${VERSION_PORT[v]}
`;

/** TCP traffic shifting as in Istio's task: a VirtualService tcp route splits connections between subsets. */
const SHIFT = `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shift, namespace: ns }
spec:
  hosts: [shift.ns.svc]
  ports: [{ number: 9000, name: tcp, protocol: TCP, targetPort: 9433 }]
  workloadSelector: { labels: { app: shift } }
${version('v1')}${version('v2')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shift, namespace: ns }
spec:
  host: shift.ns.svc
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shift, namespace: ns }
spec:
  hosts: [shift.ns.svc]
  tcp:
    - match: [{ port: 9000, sourceLabels: { app: bad } }]
      route: [{ destination: { host: shift.ns.svc, subset: v1 } }]
    - match: [{ port: 9000 }]
      route:
        - { destination: { host: shift.ns.svc, port: { number: 9000 }, subset: v1 }, weight: 50 }
        - { destination: { host: shift.ns.svc, port: { number: 9000 }, subset: v2 }, weight: 50 }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: shift, namespace: ns }
spec:
  selector: { matchLabels: { app: shift } }
  rules: [{ from: [{ source: { namespaces: [ns] } }] }]
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
${SHIFT}`;

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
  const versions: net.Server[] = [];
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
    for (const v of ['v1', 'v2'] as const) {
      const server = net.createServer((sock) => {
        sock.on('error', () => undefined);
        sock.end(v.padEnd(5, '.'));
      });
      versions.push(server);
      await new Promise<void>((r) => server.listen(VERSION_PORT[v], '127.0.0.1', () => r()));
    }
    cp = await startPlane({ configDir: policy.dir, stateDir });
    for (const id of ['ns/db-1', 'ns/app-1', 'ns/bad-1', 'ns/shift-v1', 'ns/shift-v2'])
      envoys.push(await startSidecar(cp, id));
  });

  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    echo?.close();
    for (const v of versions) v.close();
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
    assert.deepEqual(
      received.slice(before).filter((r) => r !== ''),
      [],
      'the echo server got none of their bytes',
    );
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
    assert.deepEqual(edges, [
      'ns/app-1->ns/db-1:9432',
      'ns/app-1->ns/shift-v1:9433',
      'ns/app-1->ns/shift-v2:9433',
      'ns/bad-1->ns/shift-v1:9433',
    ]);
  });

  test('a VirtualService tcp route shifts connections between subsets, and matches on the caller', async () => {
    const seen = { app: new Map<string, number>(), bad: new Map<string, number>() };
    for (let i = 0; i < 40; i++) {
      for (const who of ['app', 'bad'] as const) {
        const got = await exchange(IP[who], 15433, 'hello');
        seen[who].set(got, (seen[who].get(got) ?? 0) + 1);
      }
    }
    assert.deepEqual([...seen.bad.keys()], ['v1...'], 'the sourceLabels route sends bad to v1 only');
    assert.deepEqual([...seen.app.keys()].sort(), ['v1...', 'v2...'], `both versions answer app: ${[...seen.app]}`);
    const e = explain(model, { from: 'ns/app-1', to: 'shift.ns.svc:9000' });
    assert.equal(e.route?.name, 'ns/shift/tcp[1]');
    assert.deepEqual(
      e.destinations.map((d) => `${d.workload} ${d.share}% ${d.decision}`),
      ['ns/shift-v1 50% ALLOW', 'ns/shift-v2 50% ALLOW'],
    );
    assert.equal(explain(model, { from: 'ns/bad-1', to: 'shift.ns.svc:9000' }).route?.name, 'ns/shift/tcp[0]');
  });
});
