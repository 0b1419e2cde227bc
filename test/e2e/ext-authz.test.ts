/**
 * External authorization (AuthorizationPolicy action CUSTOM) through real Envoy sidecars, with a small HTTP
 * authorizer and a small gRPC one (envoy.service.auth.v3.Authorization/Check) started here. Both allow a request
 * that carries `x-ext-authz: allow` and deny the rest; the gRPC one answers TCP connections as `tcpAnswer` says.
 *
 *  - api-h (HTTP provider) and api-g (gRPC provider, failOpen) each have CUSTOM rules for /ext/*, a DENY for
 *    /ext/admin and an ALLOW for /ext/* and /open/*; api-g also has a TCP port its gRPC provider checks.
 *  - What is proved: selected requests go to the authorizer (allowed 200 with its header at the app, denied 403
 *    with only the configured headers), unselected ones never reach it, CUSTOM runs before DENY and ALLOW, the
 *    network ext_authz decides TCP connections, explain predicts each outcome given the authorizer's answer, and with
 *    the authorizers down statusOnError (HTTP) and failOpen (gRPC, also on TCP) hold.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { compileSource } from '../../src/compiler.js';
import { explain } from '../../src/explain/explain.js';
import { readDirectory } from '../../src/source/directory.js';
import { startApp, type App } from '../support/apps.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { request, waitFor } from '../support/http.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';

const IP = {
  apiH: '127.0.33.1',
  apiG: '127.0.33.2',
  client: '127.0.33.3',
  appH: '127.0.33.11',
  appG: '127.0.33.12',
  echo: '127.0.33.13',
  httpAuthz: '127.0.33.20',
  grpcAuthz: '127.0.33.21',
  xds: '127.0.33.30',
};

interface Seen {
  path: string;
  headers: Record<string, string>;
}

/** The HTTP authorizer: 200 (with headers for the upstream) or 403 (with headers for the client), by header. */
async function startHttpAuthorizer(port: number) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      seen.push({ path: req.url ?? '', headers });
      if (headers['x-ext-authz'] === 'allow') {
        res.writeHead(200, { 'x-ext-authz-added': 'http', 'x-not-listed': 'leak' });
        return res.end();
      }
      res.writeHead(403, { 'x-deny-reason': 'http-authorizer', 'x-not-listed': 'leak', 'content-type': 'text/plain' });
      res.end('denied by the http authorizer');
    });
  });
  await new Promise<void>((r) => server.listen(port, IP.httpAuthz, r));
  let stopped = false;
  return {
    seen,
    stop: () =>
      new Promise<void>((r) => {
        if (stopped) return r();
        stopped = true;
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const require = createRequire(import.meta.url);
const DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

/** The gRPC authorizer (Envoy's envoy.service.auth.v3.Authorization). */
async function startGrpcAuthorizer(port: number) {
  const def = protoLoader.loadSync('envoy/service/auth/v3/external_auth.proto', {
    includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(DEPS, d)),
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const seen: (Seen | { tcp: true })[] = [];
  const state = { tcpAnswer: 'deny' as 'allow' | 'deny' };
  const server = new grpc.Server();
  server.addService(pkg.envoy.service.auth.v3.Authorization.service, {
    Check: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
      const h = call.request.attributes?.request?.http;
      if (!h) {
        seen.push({ tcp: true });
        return cb(null, { status: { code: state.tcpAnswer === 'allow' ? 0 : 7 } });
      }
      const headers: Record<string, string> = h.headers ?? {};
      seen.push({ path: h.path, headers });
      if (headers['x-ext-authz'] === 'allow') {
        const add = [{ header: { key: 'x-ext-authz-added', value: 'grpc' } }];
        return cb(null, { status: { code: 0 }, ok_response: { headers: add } });
      }
      const headers403 = [{ header: { key: 'x-deny-reason', value: 'grpc-authorizer' } }];
      const denied = { status: { code: 403 }, headers: headers403, body: 'no' };
      cb(null, { status: { code: 7 }, denied_response: denied });
    },
  });
  await new Promise<void>((res, rej) =>
    server.bindAsync(`${IP.grpcAuthz}:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
  );
  let stopped = false;
  return {
    seen,
    state,
    stop: () => {
      if (!stopped) server.forceShutdown();
      stopped = true;
    },
  };
}

/** A TCP echo server behind api-g's TCP port. */
async function startEcho(port: number) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(port, IP.echo, r));
  return {
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Sends `ping` over a fresh TCP connection; resolves with what came back before the peer closed ('' if nothing). */
function tcpPing(host: string, port: number, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host);
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`tcp ${host}:${port}: no answer or close within ${timeoutMs}ms (got "${got}")`));
    }, timeoutMs);
    s.on('connect', () => s.write('ping'));
    s.on('data', (d) => {
      got += d.toString();
      if (got === 'ping') s.end();
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

function workload(name: string, ip: string, ingress: string): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}-1, namespace: ns, labels: { app: ${name} } }
spec: { address: ${ip}, serviceAccount: ${name} }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: ${name}, namespace: ns }
spec:
  workloadSelector: { labels: { app: ${name} } }
${ingress}  egress:
    - port: { number: 15001, protocol: HTTP, name: egress }
      hosts: ["./*"]
`;
}

const service = (name: string, ports: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ns }
spec:
  hosts: [${name}.ns.svc]
  ports:
${ports}  workloadSelector: { labels: { app: ${name} } }
`;

const authorizerService = (name: string, ip: string, port: number, protocol: string) => `\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: sec }
spec:
  hosts: [${name}.sec.svc]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: p, protocol: ${protocol} }]
  endpoints: [{ address: ${ip} }]
`;

/** CUSTOM /ext/*, DENY /ext/admin (HTTP port only), ALLOW /ext/* and /open/* for the client, and TCP 9090. */
const policies = (app: string, provider: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${app}-custom, namespace: ns }
spec:
  selector: { matchLabels: { app: ${app} } }
  action: CUSTOM
  provider: { name: ${provider} }
  rules: [{ to: [{ operation: { paths: ["/ext/*"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${app}-deny, namespace: ns }
spec:
  selector: { matchLabels: { app: ${app} } }
  action: DENY
  rules: [{ to: [{ operation: { ports: ["8080"], paths: ["/ext/admin"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${app}-allow, namespace: ns }
spec:
  selector: { matchLabels: { app: ${app} } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/ns/sa/client"] } }]
      to: [{ operation: { paths: ["/ext/*", "/open/*"] } }]
    - to: [{ operation: { ports: ["9090"] } }]
`;

describe('CUSTOM authorization through real Envoy with HTTP and gRPC authorizers', { timeout: 240_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  let cp: ControlPlane;
  const envoys: EnvoyProcess[] = [];
  const apps: App[] = [];
  let httpAuthz: Awaited<ReturnType<typeof startHttpAuthorizer>>;
  let grpcAuthz: Awaited<ReturnType<typeof startGrpcAuthorizer>>;
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let appH: App;
  let appG: App;

  /** A request from the client's application through its sidecar. */
  const call = (host: 'api-h' | 'api-g', p: string, allow: boolean) =>
    request({
      host: IP.client,
      port: 15001,
      path: `http://${host}.ns.svc${p}`,
      headers: { host: `${host}.ns.svc`, ...(allow ? { 'x-ext-authz': 'allow' } : {}) },
    });

  /** The response_code_details of the callee's last access-log line for a path and status (who answered). */
  const details = (e: EnvoyProcess, p: string, status = 403) =>
    waitFor(() => {
      const lines = e.logs().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      const last = lines.filter((l) => l.path === p && l.response_code === status).at(-1);
      return last?.response_code_details as string | undefined;
    }, { timeoutMs: 5000, what: `a ${status} access-log line for ${p}` });

  before(async () => {
    const [httpPort, grpcPort, appHPort, appGPort, echoPort, xdsPort] = await Promise.all([
      freePort(IP.httpAuthz),
      freePort(IP.grpcAuthz),
      freePort(IP.appH),
      freePort(IP.appG),
      freePort(IP.echo),
      freePort(IP.xds),
    ]);
    policy.write('mesh.yaml', `apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec:
  extensionProviders:
    - name: authz-http
      envoyExtAuthzHttp:
        service: sec/authz-http.sec.svc
        port: ${httpPort}
        timeout: 2s
        pathPrefix: /check
        statusOnError: "503"
        includeRequestHeadersInCheck: [x-ext-authz]
        includeAdditionalHeadersInCheck: { x-from-mesh: chancery }
        headersToUpstreamOnAllow: [x-ext-authz-added]
        headersToDownstreamOnDeny: [x-deny-reason]
    - name: authz-grpc
      envoyExtAuthzGrpc:
        service: authz-grpc.sec.svc
        port: ${grpcPort}
        timeout: 2s
        failOpen: true
`);
    policy.write('authorizers.yaml', [
      authorizerService('authz-http', IP.httpAuthz, httpPort, 'HTTP'),
      authorizerService('authz-grpc', IP.grpcAuthz, grpcPort, 'GRPC'),
    ].join('---\n'));
    const http8080 = '    - { number: 80, name: http, protocol: HTTP, targetPort: 8080 }\n';
    policy.write('services.yaml', [
      service('api-h', http8080),
      service('api-g', `${http8080}    - { number: 9090, name: tcp, protocol: TCP }\n`),
    ].join('---\n'));
    const inHttp = (app: string) =>
      `  ingress:\n    - port: { number: 8080, protocol: HTTP, name: http }\n      defaultEndpoint: ${app}\n`;
    policy.write('api-h.yaml', workload('api-h', IP.apiH, inHttp(`${IP.appH}:${appHPort}`)));
    policy.write('api-g.yaml', workload('api-g', IP.apiG, inHttp(`${IP.appG}:${appGPort}`) +
      `    - port: { number: 9090, protocol: TCP, name: tcp }\n      defaultEndpoint: ${IP.echo}:${echoPort}\n`));
    policy.write('client.yaml', workload('client', IP.client, ''));
    policy.write('authz.yaml', `${policies('api-h', 'authz-http')}---\n${policies('api-g', 'authz-grpc')}`);
    // The TCP port takes plaintext from the test directly (no TCP egress listener to go through).
    policy.write('peer.yaml', `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: api-g, namespace: ns }
spec:
  selector: { matchLabels: { app: api-g } }
  mtls: { mode: STRICT }
  portLevelMtls: { 9090: { mode: DISABLE } }
`);
    httpAuthz = await startHttpAuthorizer(httpPort);
    grpcAuthz = await startGrpcAuthorizer(grpcPort);
    echo = await startEcho(echoPort);
    appH = await startApp({ name: 'api-h', host: IP.appH, port: appHPort });
    appG = await startApp({ name: 'api-g', host: IP.appG, port: appGPort });
    apps.push(appH, appG);
    cp = await startPlane({ configDir: policy.dir, stateDir, xdsAddress: `${IP.xds}:${xdsPort}` });
    assert.equal(cp.current?.result.ok, true, JSON.stringify(cp.current?.result.diagnostics));
    for (const id of ['ns/api-h-1', 'ns/api-g-1', 'ns/client-1']) envoys.push(await startSidecar(cp, id));
    for (const host of ['api-h', 'api-g'] as const) {
      const ready = async () => (await call(host, '/open/ready', false)).status === 200;
      await waitFor(ready, { timeoutMs: 15_000, what: `${host} through the mesh` });
    }
  });

  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.stop()));
    await httpAuthz?.stop();
    grpcAuthz?.stop();
    await echo?.stop();
    await cp?.stop();
    policy.cleanup();
  });

  test('HTTP authorizer: a selected request it allows reaches the app with its header (and only that)', async () => {
    const before = httpAuthz.seen.length;
    const r = await call('api-h', '/ext/data', true);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().headers['x-ext-authz-added'], 'http');
    assert.equal(r.json().headers['x-not-listed'], undefined, 'headersToUpstreamOnAllow lists what passes');
    assert.equal(httpAuthz.seen.length, before + 1);
    const check = httpAuthz.seen.at(-1) as Seen;
    assert.equal(check.path, '/check/ext/data', 'pathPrefix');
    assert.equal(check.headers['x-from-mesh'], 'chancery', 'includeAdditionalHeadersInCheck');
    assert.equal(check.headers['x-ext-authz'], 'allow', 'includeRequestHeadersInCheck');
  });

  test('HTTP authorizer: one it denies gets 403 and the configured headers, though ALLOW allows it', async () => {
    const seenByApp = appH.count();
    const r = await call('api-h', '/ext/data', false);
    assert.equal(r.status, 403);
    assert.equal(r.body, 'denied by the http authorizer');
    assert.equal(r.headers['x-deny-reason'], 'http-authorizer');
    assert.equal(r.headers['x-not-listed'], undefined, 'headersToDownstreamOnDeny lists what passes');
    assert.equal(appH.count(), seenByApp, 'the app never sees it');
    assert.equal(await details(envoys[0], '/ext/data'), 'ext_authz_denied');
  });

  test('a request the CUSTOM rules do not select never reaches either authorizer', async () => {
    const [h, g] = [httpAuthz.seen.length, grpcAuthz.seen.length];
    assert.equal((await call('api-h', '/open/x', false)).status, 200);
    assert.equal((await call('api-g', '/open/x', false)).status, 200);
    assert.equal((await call('api-h', '/elsewhere', true)).status, 403, 'ALLOW still decides it');
    assert.equal(httpAuthz.seen.length, h);
    assert.equal(grpcAuthz.seen.length, g);
  });

  test('CUSTOM runs before DENY: an allowed request to a DENY path is asked about, then denied by DENY', async () => {
    const before = httpAuthz.seen.length;
    assert.equal((await call('api-h', '/ext/admin', true)).status, 403);
    assert.equal(httpAuthz.seen.length, before + 1, 'the authorizer was asked first');
    assert.equal(await details(envoys[0], '/ext/admin'), 'rbac_access_denied_matched_policy[ns/api-h-deny/rules[0]]');
  });

  test('gRPC authorizer: allowed with its header at the app, denied with 403, DENY after it', async () => {
    const before = grpcAuthz.seen.length;
    const ok = await call('api-g', '/ext/data', true);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.json().headers['x-ext-authz-added'], 'grpc');
    const no = await call('api-g', '/ext/data', false);
    assert.equal(no.status, 403);
    assert.equal(no.headers['x-deny-reason'], 'grpc-authorizer');
    assert.equal((await call('api-g', '/ext/admin', true)).status, 403);
    assert.equal(grpcAuthz.seen.length, before + 3);
    assert.equal((grpcAuthz.seen.at(-1) as Seen).path, '/ext/admin');
  });

  test('TCP: the gRPC authorizer decides each connection (network ext_authz)', async () => {
    const before = grpcAuthz.seen.length;
    grpcAuthz.state.tcpAnswer = 'deny';
    assert.equal(await tcpPing(IP.apiG, 9090), '', 'a denied connection is closed before any data reaches the app');
    grpcAuthz.state.tcpAnswer = 'allow';
    assert.equal(await tcpPing(IP.apiG, 9090), 'ping');
    assert.deepEqual(grpcAuthz.seen.slice(before), [{ tcp: true }, { tcp: true }]);
  });

  test('explain predicts every outcome once told what the authorizer answers, and says DEPENDS otherwise', async () => {
    const src = readDirectory(policy.dir);
    const model = compileSource(src.value, src.diagnostics).model!;
    for (const host of ['api-h', 'api-g'] as const) {
      for (const p of ['/ext/data', '/ext/admin', '/open/x', '/elsewhere']) {
        for (const allow of [true, false]) {
          const actual = (await call(host, p, allow)).status;
          const q = { from: 'ns/client-1', to: `${host}.ns.svc`, path: p };
          const e = explain(model, { ...q, extAuthz: allow ? 'allow' : 'deny' });
          assert.equal(e.status, actual, `${host} ${p} ${allow ? 'allowed' : 'denied'} by the authorizer`);
          const unknown = explain(model, q);
          const why = `${host} ${p}: ${unknown.destinations[0].reason}`;
          // Unknown answer: DEPENDS where the authorizer is asked, unless DENY refuses the request after it anyway.
          assert.equal(unknown.verdict === 'DEPENDS', p === '/ext/data', why);
          if (p === '/ext/admin') assert.equal(unknown.status, 403, why);
        }
      }
    }
  });

  test('authorizers down: statusOnError for the HTTP provider; failOpen for the gRPC one, DENY holds', async () => {
    await httpAuthz.stop();
    grpcAuthz.stop();
    await waitFor(async () => (await call('api-h', '/ext/data', true)).status === 503, {
      timeoutMs: 10_000,
      what: 'statusOnError 503 with the HTTP authorizer down',
    });
    assert.equal(await details(envoys[0], '/ext/data', 503), 'ext_authz_error');
    assert.equal((await call('api-h', '/open/x', false)).status, 200, 'unselected requests do not need it');
    await waitFor(async () => (await call('api-g', '/ext/data', false)).status === 200, {
      timeoutMs: 10_000,
      what: 'failOpen with the gRPC authorizer down',
    });
    assert.equal((await call('api-g', '/ext/admin', true)).status, 403, 'fail open lets CUSTOM pass, not DENY');
    assert.equal(await tcpPing(IP.apiG, 9090), 'ping', 'TCP fails open too');
  });
});
