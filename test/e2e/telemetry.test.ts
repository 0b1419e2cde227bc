/**
 * Telemetry end to end: the control plane's revision traces reach an OTLP/HTTP receiver; a Telemetry resource makes
 * a real Envoy sidecar send spans to an OpenTelemetry collector over gRPC and write its access log to a file with
 * the promised fields.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { startApp, type App } from '../support/apps.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { request, waitFor } from '../support/http.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';

const IP = { a: '127.0.9.1', b: '127.0.9.2' };
const APP_PORT = 19901;

/** A stand-in OpenTelemetry collector: counts OTLP trace exports (gRPC) and keeps their raw bytes. */
async function startCollector(): Promise<{ port: number; exports: Buffer[]; stop: () => void }> {
  const exports: Buffer[] = [];
  const server = new grpc.Server();
  const id = (b: Buffer) => b;
  server.addService(
    {
      Export: {
        path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
        requestStream: false,
        responseStream: false,
        requestSerialize: id,
        requestDeserialize: id,
        responseSerialize: id,
        responseDeserialize: id,
      },
    } as unknown as grpc.ServiceDefinition,
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        exports.push(call.request);
        cb(null, Buffer.alloc(0));
      },
    },
  );
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { port, exports, stop: () => server.forceShutdown() };
}

describe('telemetry', { timeout: 120_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  const logFile = `${policy.dir}-access.json`;
  let cp: ControlPlane;
  let app: App;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let otlpHttp: { port: number; bodies: Buffer[]; server: http.Server };
  const envoys: EnvoyProcess[] = [];

  before(async () => {
    collector = await startCollector();
    const bodies: Buffer[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/v1/traces') bodies.push(Buffer.concat(chunks));
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    otlpHttp = { port: (server.address() as { port: number }).port, bodies, server };
    const xdsPort = await freePort();
    policy.write(
      'mesh.yaml',
      `apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec:
  extensionProviders:
    - { name: otel, opentelemetry: { service: 127.0.0.1, port: ${collector.port} } }
    - { name: file, envoyFileAccessLog: { path: ${logFile} } }
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: default, namespace: istio-system }
spec:
  tracing: [{ providers: [{ name: otel }], randomSamplingPercentage: 100 }]
  accessLogging: [{ providers: [{ name: file }] }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: b, namespace: obs }
spec:
  hosts: [b.obs.svc]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8080 }]
  workloadSelector: { labels: { app: b } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: a-1, namespace: obs, labels: { app: a } }
spec: { address: ${IP.a}, serviceAccount: a }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: b-1, namespace: obs, labels: { app: b } }
spec: { address: ${IP.b}, serviceAccount: b }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: b, namespace: obs }
spec:
  workloadSelector: { labels: { app: b } }
  ingress: [{ port: { number: 8080, protocol: HTTP, name: http }, defaultEndpoint: "127.0.0.1:${APP_PORT}" }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: b, namespace: obs }
spec:
  selector: { matchLabels: { app: b } }
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/obs/sa/a"] } }] }]
`,
    );
    cp = await startPlane({
      configDir: policy.dir,
      stateDir,
      xdsAddress: `127.0.0.1:${xdsPort}`,
      watch: false,
      otlpTracesEndpoint: `http://127.0.0.1:${otlpHttp.port}/v1/traces`,
    });
    app = await startApp('b', '127.0.0.1', APP_PORT);
    for (const id of ['obs/a-1', 'obs/b-1']) envoys.push(await startSidecar(cp, id, { extraArgs: ['--prometheus-port', '0'] }));
  });

  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await app?.stop();
    await cp?.stop();
    collector?.stop();
    otlpHttp?.server.close();
    policy.cleanup();
  });

  test('sidecars write the access log to the configured file, with the caller identity and the RBAC decision', async () => {
    const call = () => request({ host: IP.a, port: 15001, path: 'http://b.obs.svc/logged', headers: { host: 'b.obs.svc' } });
    await waitFor(async () => (await call()).status === 200, { timeoutMs: 10_000, what: 'a -> b' });
    const line = await waitFor(() => {
      if (!existsSync(logFile)) return undefined;
      return readFileSync(logFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .find((l) => l.path === '/logged' && l.downstream_peer);
    }, { timeoutMs: 10_000, what: 'the inbound access log line' });
    assert.equal(line.downstream_peer, 'spiffe://cluster.local/ns/obs/sa/a');
    assert.equal(line.response_code, 200);
    assert.equal(line.response_code_details, 'via_upstream');
    for (const field of ['start_time', 'method', 'authority', 'duration_ms', 'upstream_cluster', 'request_id']) assert.ok(field in line, field);
  });

  test('sidecars send spans to the OpenTelemetry collector', async () => {
    await request({ host: IP.a, port: 15001, path: 'http://b.obs.svc/traced', headers: { host: 'b.obs.svc' } });
    // Envoy's OpenTelemetry tracer exports in batches every few seconds.
    await waitFor(() => collector.exports.some((b) => b.includes('obs/b-1')), { timeoutMs: 15_000, what: 'a span export from the b-1 sidecar' });
  });

  test("the control plane's own revision traces reach the OTLP endpoint", async () => {
    await cp.stop(); // flushes the batch
    assert.ok(otlpHttp.bodies.some((b) => b.includes('chancery.revision')), 'a chancery.revision span was exported');
  });
});
