/**
 * Operations: `chancery check` output and exit codes (golden, three formats), `chancery render` agreeing with what a
 * connected Envoy actually holds (its admin config_dump), and a NACK from a real Envoy traced to its policy origin
 * (through a test-only path: a resource the compiler would never produce is published directly).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { createLogger } from '../../src/app/logger.js';
import { compileSource } from '../../src/compiler.js';
import { readDirectory } from '../../src/source/directory.js';
import { typeSnapshot, withResources } from '../../src/snapshot/snapshot.js';
import { ResourceCache } from '../../src/snapshot/resource-cache.js';
import { decodeToJson, encodeJson } from '../../src/xds/proto/strict.js';
import { messageName, TYPE } from '../../src/xds/type-urls.js';
import { startApp, type App } from '../support/apps.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { request, waitFor } from '../support/http.js';
import { callerCallee, PolicyDir } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';

const UPDATE = process.env.UPDATE_GOLDEN === '1';

describe('chancery check: output and exit status', () => {
  const cases = [
    { name: 'clean', dir: 'examples/mesh', code: 0 },
    { name: 'broken', dir: 'testdata/golden/rejected/input', code: 1 },
  ];
  for (const c of cases) {
    for (const format of ['human', 'json', 'github']) {
      test(`${c.name} set, --format ${format}`, () => {
        const r = spawnSync(process.execPath, ['bin/chancery.mjs', 'check', c.dir, '--format', format], { encoding: 'utf8', timeout: 60_000 });
        assert.equal(r.status, c.code, r.stderr);
        const file = `testdata/cli/check-${c.name}.${format}.txt`;
        const out = r.stdout.replace(/revision dir:[0-9a-f]+/g, 'revision dir:<hash>');
        if (UPDATE) {
          mkdirSync(path.dirname(file), { recursive: true });
          writeFileSync(file, out);
        }
        assert.ok(existsSync(file), `missing ${file}; run UPDATE_GOLDEN=1`);
        assert.equal(out, readFileSync(file, 'utf8'));
      });
    }
  }

  test('bad usage exits 2 with a message', () => {
    const r = spawnSync(process.execPath, ['bin/chancery.mjs', 'check', '--format', 'xml', 'examples/mesh'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--format: "xml"/);
  });
});

const IP = { a: '127.0.8.1', b: '127.0.8.2' };
const APP_PORT = 19801;

describe('render and NACKs against real Envoy', { timeout: 120_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  let cp: ControlPlane;
  let app: App;
  const envoys = new Map<string, EnvoyProcess>();
  const logLines: string[] = [];

  before(async () => {
    const xdsPort = await freePort();
    policy.write(
      'mesh.yaml',
      `${callerCallee({ ns: 'ops', a: IP.a, b: IP.b, appPort: APP_PORT })}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: b, namespace: ops }
spec:
  selector: { matchLabels: { app: b } }
  rules: [{ from: [{ source: { namespaces: ["ops"] } }] }]
`,
    );
    cp = await startPlane({ configDir: policy.dir, stateDir, xdsAddress: `127.0.0.1:${xdsPort}`, watch: false, logger: createLogger('warn', (l) => logLines.push(l)) });
    app = await startApp('b', '127.0.0.1', APP_PORT);
    for (const id of ['ops/a-1', 'ops/b-1']) envoys.set(id, await startSidecar(cp, id));
    await waitFor(async () => (await request({ host: IP.a, port: 15001, path: 'http://b.ops.svc/', headers: { host: 'b.ops.svc' } })).status === 200, {
      timeoutMs: 10_000,
      what: 'traffic a -> b',
    });
  });

  after(async () => {
    await Promise.all([...envoys.values()].map((e) => e.stop()));
    await app?.stop();
    await cp?.stop();
    policy.cleanup();
  });

  /** Proto3 JSON normalised through the codec (defaults dropped), so Envoy's dump and our render compare field by field. */
  const normal = (typeUrl: string, json: unknown) => decodeToJson(messageName(typeUrl), encodeJson(messageName(typeUrl), json));

  test('chancery render matches what a connected Envoy received (config_dump)', async () => {
    const src = readDirectory(policy.dir);
    const rendered = compileSource(src.value, src.diagnostics).proxies.get('ops/b-1')!.resources;
    const dump = await envoys.get('ops/b-1')!.configDump();
    const section = (t: string) => dump.configs.find((c: any) => c['@type'] === `type.googleapis.com/envoy.admin.v3.${t}`);
    const got: Record<string, Map<string, unknown>> = {
      [TYPE.listener]: new Map(section('ListenersConfigDump').dynamic_listeners.map((l: any) => [l.name, l.active_state.listener])),
      [TYPE.cluster]: new Map((section('ClustersConfigDump').dynamic_active_clusters ?? []).map((c: any) => [c.cluster.name, c.cluster])),
      [TYPE.route]: new Map((section('RoutesConfigDump').dynamic_route_configs ?? []).map((r: any) => [r.route_config.name, r.route_config])),
    };
    for (const typeUrl of [TYPE.listener, TYPE.cluster, TYPE.route]) {
      const mine = rendered.get(typeUrl)!;
      assert.deepEqual([...got[typeUrl].keys()].sort(), mine.map((r) => r.name).sort(), `${messageName(typeUrl)} names`);
      for (const r of mine) assert.deepEqual(normal(typeUrl, stripType(got[typeUrl].get(r.name))), normal(typeUrl, r.json), `${r.name} differs from Envoy's copy`);
    }
  });

  test('a NACK from Envoy is attributed to the policy line that produced the resource, and never re-sent', async () => {
    // Test-only path: a route with a regex RE2 rejects, which the compiler would never emit.
    const id = 'ops/a-1';
    const snap = cp.ads.snapshots.get(id)!;
    const good = [...snap.types.get(TYPE.route)!.resources.values()][0];
    const bad = structuredClone(good.json) as any;
    bad.virtual_hosts[0].routes.unshift({ match: { safe_regex: { regex: '(unclosed' } }, route: { cluster: 'outbound|80||b.ops.svc' } });
    const cache = new ResourceCache();
    const broken = withResources(snap, TYPE.route, typeSnapshot(new Map([[good.name, cache.get(TYPE.route, good.name, bad, good.origins)]])));
    const all = new Map(cp.ads.snapshots.ids().map((x) => [x, cp.ads.snapshots.get(x)!]));
    all.set(id, broken);
    cp.ads.publish(all);
    const nack = await waitFor(() => cp.ads.registry.get(id)?.types.RDS?.lastNack, { timeoutMs: 10_000, what: 'Envoy to reject the route' });
    assert.match(nack.message, /regex|\(unclosed/i);
    assert.deepEqual(nack.resources.map((r) => r.name), [good.name]);
    const origin = nack.resources[0].origins[0];
    assert.equal(origin.file, 'mesh.yaml');
    assert.equal(origin.line, 1, 'the ServiceEntry that produced the route');
    assert.equal(origin.revision, snap.revision);
    const logged = logLines.map((l) => JSON.parse(l)).find((l) => l.msg.includes('NACK'));
    assert.ok(logged, 'a warning was logged');
    assert.equal(logged.proxy, id);
    assert.ok(logged.origins.some((o: string) => o.includes('mesh.yaml:1:1')));
    assert.ok(cp.history.read().some((e) => e.kind === 'nack' && e.proxy === id));
    // Parked: the rejected version is not sent again.
    const sent = cp.ads.registry.get(id)!.types.RDS.sent!.nonce;
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(cp.ads.registry.get(id)!.types.RDS.sent!.nonce, sent, 'no resend loop');
    // Traffic still flows on the last good routes, and the good snapshot is accepted again.
    assert.equal((await request({ host: IP.a, port: 15001, path: 'http://b.ops.svc/', headers: { host: 'b.ops.svc' } })).status, 200);
    all.set(id, snap);
    cp.ads.publish(all);
    await waitFor(() => cp.ads.registry.get(id)?.revision === snap.revision, { timeoutMs: 5000, what: 'a-1 back in sync' });
  });
});

function stripType(x: any): any {
  const { '@type': _t, ...rest } = x;
  return rest;
}
