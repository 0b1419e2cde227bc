/**
 * Replicas on a real etcd: three `chancery serve --store` processes share one etcd and one policy directory.
 * Every proxy receives byte-identical resources with identical versions from each replica (shared trust and shared
 * workload certificates); a replica given another store key refuses to start. Everything binds 127.0.50.x.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { runBootstrap } from '../../src/cli/bootstrap.js';
import { ProxyTokens } from '../../src/server/proxy-auth.js';
import { startApp, type App } from '../support/apps.js';
import { startEnvoy, type EnvoyProcess } from '../support/envoy.js';
import { request, waitFor } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { EtcdProcess } from '../support/etcd.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { ReplicaProcess, runChancery } from '../support/replicas.js';
import { fetchEverything, T, XdsTestClient } from '../support/xds-client.js';

const ip = (n: number) => `127.0.50.${n}`;

const WEB = ip(30);
const BOT = ip(31);
const APP = ip(32);
const INSTANCE = ip(40);
const GROUP = 'fleet/api';

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
metadata: { name: api, namespace: fleet }
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
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: api-from-web, namespace: fleet }
spec:
  selector: { matchLabels: { app: api } }
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/fleet/sa/web", "cluster.local/ns/fleet/sa/bot"] } }] }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-1, namespace: fleet, labels: { app: web } }
spec: { address: ${WEB}, serviceAccount: web }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: bot-1, namespace: fleet, labels: { app: bot } }
spec: { address: ${BOT}, serviceAccount: bot }
`;

/** The endpoint addresses an Envoy holds for api.fleet.svc (from its /clusters). */
async function apiEndpoints(e: EnvoyProcess): Promise<string[]> {
  const re = /^outbound\|80\|\|api\.fleet\.svc::(\d+\.\d+\.\d+\.\d+):\d+::health_flags::/;
  return (await e.clusters()).split('\n').flatMap((l) => re.exec(l)?.[1] ?? []);
}

/** Writes a bootstrap with `chancery bootstrap` (against a replica's state directory) and starts Envoy on it. */
async function startProxy(r: ReplicaProcess, configDir: string, args: string[]): Promise<EnvoyProcess> {
  const out = path.join(r.stateDir, `bootstrap-${args.join('_').replaceAll('/', '.')}.json`);
  const more = ['--out', out, '--state-dir', r.stateDir, '--config', configDir];
  assert.equal(await runBootstrap([...args, ...more]), 0, `bootstrap ${args.join(' ')}`);
  const config = JSON.parse(readFileSync(out, 'utf8'));
  const e = await startEnvoy({ name: config.node.id, config });
  await e.waitReady(30_000);
  return e;
}

describe('replicas sharing etcd', { timeout: 120_000 }, () => {
  const policy = new PolicyDir();
  const envoys: EnvoyProcess[] = [];
  let app: App;
  const keyDir = mkdtempSync(path.join(os.tmpdir(), 'chancery-store-key-'));
  const keyFile = path.join(keyDir, 'store.key');
  let etcd: EtcdProcess;
  const replicas: ReplicaProcess[] = [];

  before(async () => {
    writeFileSync(keyFile, randomBytes(32));
    const appPort = await freePort(APP);
    policy.write('mesh.yaml', mesh(await freePort(INSTANCE), appPort));
    app = await startApp({ name: 'api', host: APP, port: appPort });
    etcd = await EtcdProcess.start(ip(1));
    const start = (n: number) =>
      ReplicaProcess.start({ name: `r${n}`, host: ip(1 + n), configDir: policy.dir, store: etcd.url, keyFile });
    // Started together: they race to create the trust material and the certificates.
    replicas.push(...(await Promise.all([1, 2, 3].map(start))));
  });
  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(replicas.map((r) => r.close()));
    await app?.stop();
    await etcd?.close();
    policy.cleanup();
    rmSync(keyDir, { recursive: true, force: true });
  });

  test('every replica serves every proxy byte-identical resources with identical versions', async () => {
    const tokens = ProxyTokens.open(replicas[0].stateDir, { create: false });
    for (const id of ['fleet/bot-1', 'fleet/web-1']) {
      const token = await tokens.issue(id, 600);
      const served: Map<string, string>[] = [];
      for (const r of replicas) {
        const c = new XdsTestClient(r.plaintextPort, 'delta', token, r.o.host);
        served.push(await fetchEverything(c, { id, cluster: 'fleet' }));
        c.close();
      }
      const secrets = [...served[0].keys()].filter((k) => k.startsWith(T.SDS));
      assert.ok(secrets.length >= 2, `${id}: its certificate and the trust bundle are served (${secrets})`);
      assert.ok(served[0].size > secrets.length, `${id}: listeners and clusters too`);
      assert.deepEqual(served[1], served[0], `${id}: replica r2 serves what r1 does`);
      assert.deepEqual(served[2], served[0], `${id}: replica r3 serves what r1 does`);
    }
  });

  test('a registration through replica r1 reaches an Envoy connected to r2 within 1 s', async (t) => {
    const [r1, r2, r3] = replicas;
    const web = await startProxy(r2, policy.dir, ['--workload', 'fleet/web-1', '--xds-address', r2.xdsAddress]);
    envoys.push(web);
    assert.deepEqual(await apiEndpoints(web), [], 'no instance yet');
    const group = ['--group', 'fleet/api', '--address', INSTANCE, '--name', 'api-one'];
    const instance = await startProxy(r1, policy.dir, [...group, '--xds-address', r1.xdsAddress]);
    envoys.push(instance);
    // When r1 registered it (its own record), so the figure does not depend on how fast this test polls.
    const registeredAt = await waitFor(
      async () => {
        const i = (await r1.status()).proxies.find((p: { id: string }) => p.id === 'fleet/api-one');
        return i?.registered && Date.parse(i.registered.registeredAt);
      },
      { timeoutMs: 10_000, intervalMs: 10, what: 'the instance registered on r1' },
    );
    const arrived = await waitFor(async () => (await apiEndpoints(web)).includes(INSTANCE) && Date.now(), {
      timeoutMs: 5_000,
      intervalMs: 10,
      what: "the instance in web-1's endpoints (web-1 is on r2)",
    });
    t.diagnostic(`registration on r1 -> in the endpoints of web-1's Envoy on r2: ${arrived - registeredAt} ms`);
    assert.ok(
      arrived - registeredAt < 1000,
      `registration on r1 -> endpoint on r2's Envoy took ${arrived - registeredAt} ms`,
    );
    const call = () =>
      request({ host: WEB, port: 15001, path: 'http://api.fleet.svc/', headers: { host: 'api.fleet.svc' } });
    const reply = await waitFor(async () => ((await call()).status === 200 ? await call() : undefined), {
      timeoutMs: 10_000,
      what: 'web-1 -> api-one through the mesh',
    });
    assert.equal(reply.status, 200);
    const on3 = (await r3.status()).registrations.groups
      .find((g: { id: string }) => g.id === GROUP)
      .instances.map((i: { id: string }) => i.id);
    assert.deepEqual(on3, ['fleet/api-one'], 'every replica holds the registration');
  });

  test("any replica's status answers for every proxy, with the replica serving it", async () => {
    const [r1, r2, r3] = replicas;
    const where = async (r: ReplicaProcess) => {
      const s = await r.status();
      return Object.fromEntries(
        s.proxies.filter((p: any) => p.connected).map((p: any) => [p.id, `${p.replica} ${p.upToDate}`]),
      );
    };
    const expected = { 'fleet/api-one': 'r1 true', 'fleet/web-1': 'r2 true' };
    for (const r of replicas) {
      await waitFor(async () => JSON.stringify(await where(r)) === JSON.stringify(expected), {
        timeoutMs: 5_000,
        what: `${r.o.name}'s /status shows api-one on r1 and web-1 on r2, both in sync`,
      });
    }
    const one = await r3.get('/proxies/fleet/web-1');
    assert.equal(one.code, 200);
    assert.equal(one.body.status.replica, 'r2');
    assert.equal(one.body.status.connected, true);
    assert.ok(one.body.resources.LDS?.length > 0, "r3 has web-1's configuration too (the same compile)");
    const cli = await runChancery(['status', '--admin', r1.adminUrl, '--state-dir', r1.stateDir]);
    assert.equal(cli.code, 0, cli.output);
    assert.match(cli.output, /replica: r1\n/);
    assert.match(cli.output, /fleet\/web-1  in sync  runs dir:[0-9a-f]+  on r2/);
    assert.match(cli.output, /fleet\/api-one  in sync  runs dir:[0-9a-f]+  on r1/);
    void r2;
  });

  test('kill -9 of the replica serving a live Envoy: no failed request, it reconnects, gets nothing new', async (t) => {
    const others = replicas.slice(1); // r1 serves api-one (registered there, with r1 only in its bootstrap)
    const list = others.map((r) => r.xdsAddress).join(',');
    const bot = await startProxy(others[0], policy.dir, ['--workload', 'fleet/bot-1', '--xds-address', list]);
    envoys.push(bot);
    const servedBy = async () => {
      for (const r of others) {
        const p = (await r.status()).proxies.find((x: { id: string }) => x.id === 'fleet/bot-1');
        if (p?.connected && p.upToDate) return r;
      }
      return undefined;
    };
    const x = await waitFor(servedBy, { timeoutMs: 10_000, what: 'bot-1 connected and in sync' });
    const y = others.find((r) => r !== x)!;
    const call = () =>
      request({ host: BOT, port: 15001, path: 'http://api.fleet.svc/', headers: { host: 'api.fleet.svc' } });
    await waitFor(async () => (await call()).status === 200, { timeoutMs: 10_000, what: 'bot-1 -> api-one' });
    const updates = async () => bot.stats('update_(success|rejected)$');
    const before = await updates();
    let stop = false;
    const results: (number | string)[] = [];
    const traffic = (async () => {
      while (!stop) {
        results.push(
          await call().then(
            (r) => r.status,
            (e: Error) => e.message,
          ),
        );
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const killedAt = Date.now();
    await x.kill9();
    const moved = await waitFor(
      async () => {
        const p = (await y.status()).proxies.find((q: { id: string }) => q.id === 'fleet/bot-1');
        return p?.connected && p.upToDate && Date.now();
      },
      { timeoutMs: 20_000, intervalMs: 20, what: `bot-1 reconnected to ${y.o.name}` },
    );
    t.diagnostic(`kill -9 of ${x.o.name} -> bot-1 in sync on ${y.o.name}: ${moved - killedAt} ms`);
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await traffic;
    const failed = results.filter((r) => r !== 200);
    assert.ok(results.length > 20, `traffic flowed (${results.length} requests)`);
    assert.deepEqual(failed, [], `every request succeeded (${results.length} requests)`);
    const p = (await y.status()).proxies.find((q: { id: string }) => q.id === 'fleet/bot-1');
    const sent = Object.values(p.types as Record<string, { sent?: unknown }>).filter((ty) => ty.sent);
    assert.deepEqual(sent, [], `${y.o.name} sent bot-1 nothing: it already held the same versions`);
    assert.deepEqual(await updates(), before, "bot-1's Envoy applied no config update");
    await x.spawnAgain();
  });

  test('etcd stopped and restarted during traffic: served on, registrations refused, converged', async (t) => {
    const [r1, , r3] = replicas;
    const call = () =>
      request({ host: BOT, port: 15001, path: 'http://api.fleet.svc/', headers: { host: 'api.fleet.svc' } });
    await waitFor(async () => (await call()).status === 200, { timeoutMs: 10_000, what: 'bot-1 -> api-one' });
    let stop = false;
    const results: (number | string)[] = [];
    const traffic = (async () => {
      while (!stop) {
        results.push(
          await call().then(
            (r) => r.status,
            (e: Error) => e.message,
          ),
        );
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    // Into another group than api's: an instance without an Envoy must not join the endpoints bot-1 calls.
    const token = await ProxyTokens.open(r3.stateDir, { create: false }).issueGroup('fleet/db', 0, 600);
    const register = (name: string) => {
      const c = new XdsTestClient(r3.plaintextPort, 'delta', token, r3.o.host);
      const metadata = { fields: { 'chancery.dev/address': { stringValue: ip(42) } } };
      c.send({
        node: { id: `fleet/${name}`, cluster: 'fleet', metadata },
        type_url: T.CDS,
        resource_names_subscribe: ['*'],
      });
      return c;
    };
    await etcd.stop();
    const reachable = async (up: boolean) => {
      for (const r of replicas) if ((await r.status()).replica.storeReachable !== up) return false;
      return true;
    };
    await waitFor(() => reachable(false), { timeoutMs: 10_000, what: 'every replica reports the store unreachable' });
    const refused = register('db-two');
    const end = await refused.ended(5000);
    refused.close();
    assert.equal(end.code, 14, 'UNAVAILABLE');
    assert.match(end.details, /etcd\) is unreachable/);
    const downFor = Date.now();
    await etcd.start();
    await waitFor(() => reachable(true), {
      timeoutMs: 15_000,
      what: 'every replica reports the store reachable again',
    });
    t.diagnostic(`etcd restarted -> every replica reachable again: ${Date.now() - downFor} ms`);
    const joined = register('db-two');
    await joined.next(5000); // admitted: its configuration comes
    await waitFor(
      async () => {
        const db = (await r1.status()).registrations.groups.find((g: { id: string }) => g.id === 'fleet/db');
        return db.instances.some((i: { id: string }) => i.id === 'fleet/db-two');
      },
      { timeoutMs: 5_000, what: 'db-two (registered on r3 after the outage) known to r1' },
    );
    joined.close();
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await traffic;
    assert.ok(results.length > 20, `traffic flowed (${results.length} requests)`);
    assert.deepEqual(
      results.filter((r) => r !== 200),
      [],
      'no request failed during the outage',
    );
  });

  test('root rotation run on a third replica while bot-1 calls api-one on two others: no request fails', async (t) => {
    const serving = async (id: string) =>
      (await replicas[0].status()).proxies.find((p: { id: string; connected: boolean }) => p.id === id && p.connected)
        ?.replica;
    const [botOn, apiOn] = [await serving('fleet/bot-1'), await serving('fleet/api-one')];
    const runner = replicas.find((r) => r.o.name !== botOn && r.o.name !== apiOn)!;
    assert.ok(botOn && apiOn && botOn !== apiOn && runner, `bot-1 on ${botOn}, api-one on ${apiOn}`);
    const signer = async (r: ReplicaProcess) => (await r.status()).certificates.signer.serial as string;
    const before = await signer(runner);
    const call = () =>
      request({ host: BOT, port: 15001, path: 'http://api.fleet.svc/', headers: { host: 'api.fleet.svc' } });
    await waitFor(async () => (await call()).status === 200, { timeoutMs: 10_000, what: 'bot-1 -> api-one' });
    let stop = false;
    const results: (number | string)[] = [];
    const traffic = (async () => {
      while (!stop) {
        results.push(
          await call().then(
            (r) => r.status,
            (e: Error) => e.message,
          ),
        );
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const t0 = Date.now();
    const r = await runChancery(['rotate-root', '--admin', runner.adminUrl, '--state-dir', runner.stateDir]);
    t.diagnostic(
      `root rotation run on ${runner.o.name} (bot-1 on ${botOn}, api-one on ${apiOn}): ${Date.now() - t0} ms`,
    );
    await new Promise((res) => setTimeout(res, 500));
    stop = true;
    await traffic;
    assert.equal(r.code, 0, r.output);
    const after = await signer(runner);
    assert.notEqual(after, before, 'a new root signs');
    for (const x of replicas) {
      const s = await x.status();
      assert.equal(s.certificates.signer.serial, after, `${x.o.name} signs with the new root too`);
      for (const c of s.certificates.workloads) assert.equal(c.signer, after, `${x.o.name}: ${c.identity} reissued`);
    }
    assert.ok(results.length > 20, `traffic flowed (${results.length} requests)`);
    assert.deepEqual(
      results.filter((x) => x !== 200),
      [],
      'no request failed during the rotation',
    );
  });

  test('a group revoked on r2 is revoked everywhere: r1 evicts its instance, r3 refuses the old token', async () => {
    const [r1, r2, r3] = replicas;
    const old = await ProxyTokens.open(r3.stateDir, { create: false }).issueGroup('fleet/api', 0, 600);
    const r = await runChancery(['revoke', '--group', 'fleet/api', '--admin', r2.adminUrl, '--state-dir', r2.stateDir]);
    assert.equal(r.code, 0, r.output);
    for (const x of replicas) {
      await waitFor(
        async () => {
          const g = (await x.status()).registrations.groups.find((g: { id: string }) => g.id === GROUP);
          return g.tokenGeneration === 1 && g.instances.length === 0;
        },
        { timeoutMs: 5_000, what: `${x.o.name}: generation 1 and api-one evicted` },
      );
    }
    const c = new XdsTestClient(r3.plaintextPort, 'delta', old, r3.o.host);
    const node = {
      id: 'fleet/api-two',
      cluster: 'fleet',
      metadata: { fields: { 'chancery.dev/address': { stringValue: ip(41) } } },
    };
    c.send({ node, type_url: T.CDS, resource_names_subscribe: ['*'] });
    const end = await c.ended(5000);
    assert.equal(end.code, 16, `the old group token is refused by r3 (${end.details})`); // UNAUTHENTICATED
    c.close();
    void r1;
  });

  test('an xDS CA rotation made on r1 is followed by every replica (bootstraps and server certificates)', async () => {
    const [r1] = replicas;
    const ca = async (r: ReplicaProcess) => (await r.status()).certificates.xds;
    const step = (name: string) =>
      runChancery(['rotate-xds-ca', name, '--admin', r1.adminUrl, '--state-dir', r1.stateDir]);
    const begun = await step('begin');
    assert.equal(begun.code, 0, begun.output);
    const next = (await ca(r1)).ca.next.serial;
    for (const r of replicas) {
      await waitFor(async () => (await ca(r)).ca.next?.serial === next, {
        timeoutMs: 5_000,
        what: `${r.o.name}: bootstraps trust the next xDS CA too`,
      });
    }
    const finished = await step('finish');
    assert.equal(finished.code, 0, finished.output);
    for (const r of replicas) {
      await waitFor(
        async () => {
          const x = await ca(r);
          return x.ca.current.serial === next && x.ca.next === null && x.server.anchor === next;
        },
        { timeoutMs: 5_000, what: `${r.o.name}: serves a certificate from the new xDS CA` },
      );
    }
  });

  test('a replica given another store key refuses to start, saying so', async () => {
    const other = path.join(keyDir, 'other.key');
    writeFileSync(other, randomBytes(32));
    const state = mkdtempSync(path.join(os.tmpdir(), 'chancery-replica-'));
    const args = ['serve', '--config', policy.dir, '--state-dir', state, '--xds-host', ip(9), '--xds-port', '0'];
    const r = await runChancery([...args, '--admin-port', '0', '--store', etcd.url, '--store-key', other]);
    rmSync(state, { recursive: true, force: true });
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /store-key file is not the key this store was created with/);
  });
});
