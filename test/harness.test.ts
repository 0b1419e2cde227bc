/**
 * The real-Envoy test harness tested on its own: config validation, a static Envoy proxying to a test app, the admin
 * helpers, start-up failures, and the apps' behaviours.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type App } from './support/apps.js';
import { startEnvoy, validateEnvoyConfig, type EnvoyProcess } from './support/envoy.js';
import { request } from './support/http.js';
import { freePort } from './support/ports.js';

const T = { timeout: 60_000 };
const HOST = '127.0.0.1';

const socket = (address: string, port: number) => ({ socket_address: { address, port_value: port } });

/** A static bootstrap: one HTTP listener routing everything to one static cluster. */
function staticConfig(o: { adminPort: number; listenPort: number; appPort: number }) {
  return {
    admin: { address: socket(HOST, o.adminPort) },
    static_resources: {
      listeners: [
        {
          name: 'ingress',
          address: socket(HOST, o.listenPort),
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'harness',
                    route_config: {
                      name: 'local',
                      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }],
                    },
                    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'app',
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: { cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: socket(HOST, o.appPort) } }] }] },
        },
      ],
    },
  };
}

describe('validateEnvoyConfig', () => {
  const good = staticConfig({ adminPort: 9901, listenPort: 10000, appPort: 8080 });

  test('accepts a minimal static config', T, async () => {
    const v = await validateEnvoyConfig(good);
    assert.equal(v.ok, true, v.output);
  });

  test('rejects a cluster with an unknown field', T, async () => {
    const bad = structuredClone(good);
    (bad.static_resources.clusters[0] as any).no_such_field = true;
    const v = await validateEnvoyConfig(bad);
    assert.equal(v.ok, false);
    assert.match(v.output, /no_such_field/);
  });

  test('rejects a listener on port 70000', T, async () => {
    const bad = structuredClone(good);
    bad.static_resources.listeners[0].address.socket_address.port_value = 70000;
    const v = await validateEnvoyConfig(bad);
    assert.equal(v.ok, false, v.output);
  });
});

describe('a static Envoy in front of an app', () => {
  let app: App;
  let envoy: EnvoyProcess;
  let listenPort: number;

  before(async () => {
    app = await startApp({ name: 'echo', host: HOST, port: await freePort() });
    listenPort = await freePort();
    envoy = await startEnvoy({ name: 'harness', config: staticConfig({ adminPort: await freePort(), listenPort, appPort: app.port }) });
    await envoy.waitReady(15_000);
  });

  after(async () => {
    await envoy?.stop();
    await app?.stop();
  });

  test('proxies a request to the app, which sees it', T, async () => {
    const r = await request({ host: HOST, port: listenPort, path: '/hello?x=1', method: 'POST', headers: { 'x-probe': 'yes' }, body: 'hi' });
    assert.equal(r.status, 200, r.body);
    const j = r.json();
    assert.equal(j.app, 'echo');
    assert.equal(j.method, 'POST');
    assert.equal(j.path, '/hello?x=1');
    assert.equal(j.body, 'hi');
    assert.equal(j.headers['x-probe'], 'yes');
    assert.ok(j.headers['x-request-id'], 'Envoy added x-request-id');
    assert.equal(r.headers['server'], 'envoy');
    assert.equal(app.count(), 1);
    assert.equal(app.requests[0].path, '/hello?x=1');
  });

  test('admin helpers: stats, clusters, config dump', T, async () => {
    const stats = await envoy.stats('^http\\.harness\\.');
    assert.ok(stats['http.harness.downstream_rq_total'] >= 1, JSON.stringify(stats));
    assert.match(await envoy.clusters(), new RegExp(`^app::${HOST.replace(/\./g, '\\.')}:${app.port}::`, 'm'));
    const dump = await envoy.configDump();
    assert.ok(dump.configs.some((c: any) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump'));
    assert.ok(envoy.pid > 0 && envoy.adminUrl.startsWith(`http://${HOST}:`));
  });

  test('an upstream failure shows through, and the app can change behaviour', T, async () => {
    app.setBehaviour({ kind: 'status', code: 503 });
    try {
      assert.equal((await request({ host: HOST, port: listenPort, path: '/down' })).status, 503);
    } finally {
      app.setBehaviour({ kind: 'ok' });
    }
    assert.equal((await request({ host: HOST, port: listenPort, path: '/up' })).status, 200);
  });
});

describe('startEnvoy', () => {
  test('rejects with the log when Envoy exits at start-up', T, async () => {
    const config = staticConfig({ adminPort: await freePort(), listenPort: 70000, appPort: 1 });
    await assert.rejects(startEnvoy({ name: 'broken', config }), /envoy broken exited \(code 1\)[\s\S]*PortValue: value must be less than or equal to 65535/);
  });

  test('finds the admin address when the config asks for port 0, and stop() ends Envoy', T, async () => {
    const e = await startEnvoy({ name: 'port0', config: staticConfig({ adminPort: 0, listenPort: await freePort(), appPort: 1 }) });
    try {
      assert.match(e.adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.doesNotMatch(e.adminUrl, /:0$/);
      await e.waitReady(15_000);
    } finally {
      await e.stop();
    }
    assert.equal(e.exited, true);
  });
});

describe('apps', () => {
  let app: App;
  const get = (headers: Record<string, string> = {}) => request({ host: HOST, port: app.port, path: '/', headers });

  before(async () => {
    app = await startApp({ name: 'b', host: HOST, port: 0, behaviour: { kind: 'flaky', every: 3, code: 502 } });
  });
  after(() => app?.stop());

  test('flaky fails requests 1, 1+N, 1+2N…', T, async () => {
    const codes = [];
    for (let i = 0; i < 6; i++) codes.push((await get()).status);
    assert.deepEqual(codes, [502, 200, 200, 502, 200, 200]);
  });

  test('delays by behaviour and by x-test-delay-ms', T, async () => {
    app.setBehaviour({ kind: 'delay', ms: 100 });
    let t0 = Date.now();
    await get();
    assert.ok(Date.now() - t0 >= 100);
    app.setBehaviour({ kind: 'ok' });
    t0 = Date.now();
    await get({ 'x-test-delay-ms': '150' });
    assert.ok(Date.now() - t0 >= 150);
    await assert.rejects(request({ host: HOST, port: app.port, headers: { 'x-test-delay-ms': '2000' }, timeoutMs: 100 }), /timed out after 100ms/);
  });

  test('reset() forgets requests; a taken port is a clear error', T, async () => {
    app.reset();
    assert.equal(app.count(), 0);
    await assert.rejects(startApp({ name: 'dup', host: HOST, port: app.port }), new RegExp(`app dup cannot listen on 127\\.0\\.0\\.1:${app.port}: .*EADDRINUSE`));
  });
});
