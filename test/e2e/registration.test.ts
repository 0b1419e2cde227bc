/**
 * Auto-registration with real Envoy: a WorkloadGroup of three instances, each a stock Envoy started from
 * `chancery bootstrap --group`, registers itself and serves a caller's traffic (every instance gets requests);
 * one stopped instance leaves the endpoints after the grace period; forged, foreign and revoked tokens, a name
 * outside the group and an instance past maxInstances register nothing; and a registration compiles the new
 * instance and its caller only, never an unrelated proxy. Registered workloads show in status, graph, explain,
 * render and history. Everything binds 127.0.36.x.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { startStatusServer, statusDocument } from '../../src/admin/status-server.js';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { proxyAt } from '../../src/app/history.js';
import { runBootstrap } from '../../src/cli/bootstrap.js';
import { runRender } from '../../src/cli/render.js';
import { runRevoke } from '../../src/cli/revoke.js';
import { explain } from '../../src/explain/explain.js';
import { buildGraph } from '../../src/explain/graph.js';
import { ProxyTokens } from '../../src/server/proxy-auth.js';
import { startApp, type App } from '../support/apps.js';
import { startEnvoy, type EnvoyProcess } from '../support/envoy.js';
import { request, waitFor } from '../support/http.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';
import { T, XdsTestClient } from '../support/xds-client.js';

const ip = (n: number) => `127.0.36.${n}`;
const CP = ip(1);
const WEB = ip(10);
const APP = ip(20);
const INSTANCES = [
  { name: 'api-1', address: ip(11) },
  { name: 'api-2', address: ip(12) },
  // No --name: named after its address, as Istio names auto-registered entries.
  { address: ip(13) },
];
const GRACE_MS = 3000;

const mesh = (inbound: number, app: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: fleet }
spec:
  hosts: [api.fleet.svc]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: api } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: api, namespace: fleet, annotations: { chancery.dev/max-instances: "3" } }
spec:
  metadata: { labels: { app: api } }
  template: { serviceAccount: api, ports: { http: ${inbound} } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: db, namespace: fleet }
spec:
  metadata: { labels: { app: db } }
  template: { serviceAccount: db }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: api, namespace: fleet }
spec:
  workloadSelector: { labels: { app: api } }
  ingress:
    - port: { number: ${inbound}, protocol: HTTP, name: http }
      defaultEndpoint: ${APP}:${app}
  egress: [{ hosts: ["./other.fleet.svc"] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: api-from-web, namespace: fleet }
spec:
  selector: { matchLabels: { app: api } }
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/fleet/sa/web"] } }] }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-1, namespace: fleet, labels: { app: web } }
spec: { address: ${WEB}, serviceAccount: web }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: other, namespace: fleet }
spec:
  hosts: [other.fleet.svc]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: ${ip(99)} }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: bot-1, namespace: fleet, labels: { app: bot } }
spec: { address: ${ip(30)}, serviceAccount: bot }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: bot, namespace: fleet }
spec:
  workloadSelector: { labels: { app: bot } }
  egress: [{ hosts: ["./other.fleet.svc"] }]
`;

/** Node metadata (a google.protobuf.Struct) with the address an instance registers with. */
const addressMetadata = (address: string) => ({ fields: { 'chancery.dev/address': { stringValue: address } } });

/** The endpoint addresses web-1's Envoy holds for api (from its /clusters). */
async function apiEndpoints(e: EnvoyProcess): Promise<string[]> {
  const lines = (await e.clusters()).split('\n');
  const re = /^outbound\|80\|\|api\.fleet\.svc::(\d+\.\d+\.\d+\.\d+):\d+::health_flags::/;
  return lines.flatMap((l) => re.exec(l)?.[1] ?? []).sort();
}

/** Requests an instance's Envoy forwarded to the application (its inbound cluster). */
async function forwarded(e: EnvoyProcess): Promise<number> {
  const stats = await e.stats('^cluster\\.inbound.*\\.upstream_rq_total$');
  return Object.values(stats).reduce((a, b) => a + b, 0);
}

/** Console output of a CLI command run in process. */
async function captured(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    return { code: await fn(), out: lines.join('\n') };
  } finally {
    console.log = log;
  }
}

describe('auto-registration of stock Envoys into a WorkloadGroup', { timeout: 180_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'chancery-registration-state-'));
  let cp: ControlPlane;
  let app: App;
  let web: EnvoyProcess;
  let admin: Server;
  let adminUrl = '';
  const instances = new Map<string, EnvoyProcess>();
  const callApi = () =>
    request({ host: WEB, port: 15001, path: 'http://api.fleet.svc/', headers: { host: 'api.fleet.svc' } });

  /** Writes an instance's bootstrap with `chancery bootstrap --group` and starts Envoy on it. */
  type Started = { id: string; envoy: EnvoyProcess };
  async function startInstance(o: { name?: string; address: string }, tag = ''): Promise<Started> {
    const out = path.join(stateDir, `bootstrap-${o.address}${tag}.json`);
    const name = o.name ? ['--name', o.name] : [];
    const args = ['--config', policy.dir, '--group', 'fleet/api', '--address', o.address, ...name];
    const more = ['--out', out, '--xds-address', cp.settings.xdsAddress, '--state-dir', stateDir];
    assert.equal(await runBootstrap([...args, ...more]), 0, `bootstrap --group for ${o.address}`);
    const config = JSON.parse(readFileSync(out, 'utf8'));
    const id: string = config.node.id;
    return { id, envoy: await startEnvoy({ name: id, config }) };
  }

  before(async () => {
    const inbound = await freePort(ip(11));
    const appPort = await freePort(APP);
    policy.write('mesh.yaml', mesh(inbound, appPort));
    app = await startApp({ name: 'api', host: APP, port: appPort });
    cp = await startPlane({
      configDir: policy.dir,
      stateDir,
      xdsAddress: `${CP}:${await freePort(CP)}`,
      xdsPlaintextAddress: `${CP}:0`,
      registrationGraceMs: GRACE_MS,
    });
    admin = await startStatusServer(cp, CP, 0);
    adminUrl = `http://${CP}:${(admin.address() as { port: number }).port}`;
    web = await startSidecar(cp, 'fleet/web-1');
  });
  after(async () => {
    await Promise.all([...instances.values(), web].map((e) => e?.stop()));
    admin?.close();
    await cp?.stop();
    await app?.stop();
    policy.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });

  test('three instances register one by one; each compiles itself and its caller only', async () => {
    const bot = cp.current!.result.proxies.get('fleet/bot-1');
    assert.ok(bot, 'the unrelated proxy is compiled');
    for (const [k, o] of INSTANCES.entries()) {
      const { id, envoy } = await startInstance(o);
      instances.set(id, envoy);
      await envoy.waitReady(30_000);
      const compiled = () => cp.current!.registered.some((r) => r.id === id);
      await waitFor(compiled, { timeoutMs: 10_000, what: `${id} compiled in` });
      const last = cp.lastRegistrationCompile;
      assert.deepEqual(last && [last.instances, last.compiled], [k + 1, 2], `${id}: the instance itself and web-1`);
      assert.equal(cp.current!.result.proxies.get('fleet/bot-1'), bot, 'bot-1 not compiled again');
    }
    assert.deepEqual([...instances.keys()], ['fleet/api-1', 'fleet/api-2', 'fleet/api-127-0-36-13']);
    const want = INSTANCES.map((i) => i.address);
    const three = async () => (await apiEndpoints(web)).join() === want.join();
    await waitFor(three, { timeoutMs: 10_000, what: "web-1's Envoy to hold three api endpoints" });
  });

  test('traffic from the caller reaches every instance over mTLS, as the group identity', async () => {
    const before = await Promise.all([...instances.values()].map(forwarded));
    for (let i = 0; i < 30; i++) {
      const r = await callApi();
      assert.equal(r.status, 200, r.body);
      const seen = r.json();
      const xfcc = String(seen.headers['x-forwarded-client-cert']);
      assert.match(xfcc, /URI=spiffe:\/\/cluster\.local\/ns\/fleet\/sa\/web/);
    }
    const after = await Promise.all([...instances.values()].map(forwarded));
    const got = after.map((n, i) => n - before[i]);
    assert.ok(got.every((n) => n > 0), `every instance forwarded requests: ${got.join(', ')}`);
    assert.equal(got.reduce((a, b) => a + b, 0), 30);
    // Each instance's certificate is the group's identity.
    const certs = JSON.parse(await instances.get('fleet/api-1')!.adminGet('/certs')).certificates;
    const chain = certs.flatMap((c: any) => c.cert_chain ?? []);
    const uris = chain.flatMap((c: any) => c.subject_alt_names ?? []).map((s: any) => s.uri);
    assert.ok(uris.includes('spiffe://cluster.local/ns/fleet/sa/api'), JSON.stringify(uris));
  });

  test('registered workloads show in status, graph, explain, render and history, marked registered', async () => {
    const doc = statusDocument(cp) as any;
    const p = doc.proxies.find((x: any) => x.id === 'fleet/api-1');
    assert.equal(p.registered.group, 'fleet/api');
    assert.equal(p.registered.address, ip(11));
    assert.equal(doc.proxies.find((x: any) => x.id === 'fleet/web-1').registered, null);
    assert.deepEqual(doc.registrations.groups.find((g: any) => g.id === 'fleet/api').instances.length, 3);
    const model = cp.current!.result.model!;
    const graph = buildGraph(model);
    assert.equal(graph.registered['fleet/api-2'], 'fleet/api');
    assert.ok(graph.edges.some((e) => e.from === 'fleet/web-1' && e.to === 'fleet/api-2'));
    const e = explain(model, { from: 'fleet/web-1', to: 'api.fleet.svc' });
    assert.equal(e.verdict, 'ALLOW');
    const marked = e.destinations.map((d) => `${d.workload} ${d.registered}`).sort();
    assert.deepEqual(marked, [...instances.keys()].map((id) => `${id} fleet/api`).sort());
    // Offline, from the state directory the control plane keeps them in.
    const args = ['--config', policy.dir, '--proxy', 'fleet/api-2', '--state-dir', stateDir, '--format', 'json'];
    const render = await captured(() => runRender(args));
    assert.equal(render.code, 0);
    assert.ok(JSON.parse(render.out).LDS.some((l: any) => JSON.stringify(l.address).includes(ip(12))));
    const h = proxyAt(cp.history.read(), 'fleet/api-2', new Date());
    assert.deepEqual(h.registered && [h.registered.group, h.registered.address], ['fleet/api', ip(12)]);
  });

  test('past maxInstances, outside the group, foreign and forged tokens: nothing registers', async () => {
    const apiToken = await cp.issueGroupToken('fleet/api');
    const dbToken = await cp.issueGroupToken('fleet/db');
    const forger = ProxyTokens.open(mkdtempSync(path.join(os.tmpdir(), 'chancery-forger-')));
    const forged = await forger.issueGroup('fleet/api', 0, 3600);
    const attempts: [string, string, string, grpc.status][] = [
      ['past maxInstances (3)', apiToken, 'fleet/api-4', grpc.status.RESOURCE_EXHAUSTED],
      ['a name outside the group', apiToken, 'fleet/cache-1', grpc.status.PERMISSION_DENIED],
      ['a committed workload of another app', apiToken, 'fleet/web-1', grpc.status.PERMISSION_DENIED],
      ["another group's token", dbToken, 'fleet/api-5', grpc.status.PERMISSION_DENIED],
      ['another namespace', apiToken, 'shop/api-1', grpc.status.PERMISSION_DENIED],
      ['a forged group token', forged, 'fleet/api-6', grpc.status.UNAUTHENTICATED],
    ];
    const registered = cp.registrations.list();
    for (const [what, token, node, code] of attempts) {
      const c = new XdsTestClient(cp.xdsPlaintextPort, 'delta', token, CP);
      try {
        c.send({ node: { id: node, cluster: 'fleet', metadata: addressMetadata(ip(50)) }, type_url: T.CDS });
        const s = await c.ended(5000);
        assert.equal(s.code, code, `${what}: ${grpc.status[s.code]} ${s.details}`);
      } finally {
        c.close();
      }
      assert.equal(cp.registrations.list(), registered, `${what}: nothing registered`);
      const none = cp.current!.committed.has(node) || cp.ads.snapshots.get(node) === undefined;
      assert.ok(none, `${what}: no configuration`);
    }
    // The dead token of a workload the group owns is no way in either: a workload token never serves a registered name.
    const c = new XdsTestClient(cp.xdsPlaintextPort, 'delta', await cp.issueToken('fleet/api-1'), CP);
    c.send({ node: { id: 'fleet/api-1', cluster: 'fleet' }, type_url: T.CDS });
    assert.equal((await c.ended(5000)).code, grpc.status.PERMISSION_DENIED);
    c.close();
  });

  test('a stopped instance leaves the endpoints after the grace period; traffic goes to the others', async () => {
    const id = 'fleet/api-127-0-36-13';
    const history = (kind: string) => cp.history.read().some((e) => e.kind === kind && 'proxy' in e && e.proxy === id);
    await instances.get(id)!.stop();
    instances.delete(id);
    const gone = () => cp.registrations.get(id)?.connected === false;
    await waitFor(gone, { timeoutMs: 5000, what: 'its stream seen gone' });
    assert.ok(cp.registrations.list().some((r) => r.id === id), 'kept during the grace period');
    const two = [ip(11), ip(12)].join();
    const left = async () => (await apiEndpoints(web)).join() === two;
    await waitFor(left, { timeoutMs: GRACE_MS + 10_000, what: 'two api endpoints' });
    assert.equal(cp.registrations.get(id), undefined);
    assert.ok(history('deregistered'), 'its leaving is in the history');
    const shown = (statusDocument(cp) as any).proxies.map((p: any) => p.id);
    assert.ok(!shown.includes(id), 'status does not keep instances that left');
    assert.equal(cp.lastRegistrationCompile?.compiled, 1, 'only web-1 compiled again');
    for (let i = 0; i < 10; i++) assert.equal((await callApi()).status, 200);
  });

  test('revoke --group: the instances leave, their tokens register nothing, a new bootstrap does', async () => {
    const oldToken = await cp.issueGroupToken('fleet/api');
    const r = await captured(() => runRevoke(['--group', 'fleet/api', '--admin', adminUrl, '--state-dir', stateDir]));
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /generation 1.*fleet\/api-1, fleet\/api-2/);
    const empty = async () => (await apiEndpoints(web)).length === 0;
    await waitFor(empty, { timeoutMs: 10_000, what: 'no api endpoint left' });
    assert.deepEqual(cp.registrations.list(), []);
    // The Envoys retry with their (revoked) tokens: refused, and nothing registers.
    const api1 = instances.get('fleet/api-1')!;
    const XDS_RQ = 'cluster.chancery-xds.upstream_rq_total';
    const attempts = async () => (await api1.stats(`^${XDS_RQ.replaceAll('.', '\\.')}$`))[XDS_RQ];
    const tried = await attempts();
    await waitFor(async () => (await attempts()) > tried, { timeoutMs: 15_000, what: 'api-1 to try again' });
    assert.deepEqual(cp.registrations.list(), [], 'the revoked token registered nothing');
    const c = new XdsTestClient(cp.xdsPlaintextPort, 'delta', oldToken, CP);
    const node = { id: 'fleet/api-7', cluster: 'fleet', metadata: addressMetadata(ip(51)) };
    c.send({ node, type_url: T.CDS });
    assert.equal((await c.ended(5000)).code, grpc.status.UNAUTHENTICATED);
    c.close();
    // A bootstrap written after the revocation carries the new generation.
    await api1.stop();
    instances.delete('fleet/api-1');
    const fresh = await startInstance(INSTANCES[0], '-new');
    instances.set(fresh.id, fresh.envoy);
    await fresh.envoy.waitReady(30_000);
    await waitFor(async () => (await apiEndpoints(web)).join() === ip(11), { timeoutMs: 10_000, what: 'api-1 back' });
    assert.equal((await callApi()).status, 200);
  });
});
