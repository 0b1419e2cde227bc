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
import { ProxyTokens } from '../../src/server/proxy-auth.js';
import { EtcdProcess } from '../support/etcd.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { ReplicaProcess, runChancery } from '../support/replicas.js';
import { fetchEverything, T, XdsTestClient } from '../support/xds-client.js';

const ip = (n: number) => `127.0.50.${n}`;

const mesh = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: fleet }
spec:
  hosts: [api.fleet.svc]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: api } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: api-1, namespace: fleet, labels: { app: api } }
spec: { address: ${ip(31)}, serviceAccount: api }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-1, namespace: fleet, labels: { app: web } }
spec: { address: ${ip(30)}, serviceAccount: web }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: api, namespace: fleet }
spec:
  workloadSelector: { labels: { app: api } }
  ingress:
    - port: { number: 8080, protocol: HTTP, name: http }
      defaultEndpoint: ${ip(32)}:8080
`;

describe('replicas sharing etcd', { timeout: 120_000 }, () => {
  const policy = new PolicyDir().write('mesh.yaml', mesh);
  const keyDir = mkdtempSync(path.join(os.tmpdir(), 'chancery-store-key-'));
  const keyFile = path.join(keyDir, 'store.key');
  let etcd: EtcdProcess;
  const replicas: ReplicaProcess[] = [];

  before(async () => {
    writeFileSync(keyFile, randomBytes(32));
    etcd = await EtcdProcess.start(ip(1));
    const start = (n: number) =>
      ReplicaProcess.start({ name: `r${n}`, host: ip(1 + n), configDir: policy.dir, store: etcd.url, keyFile });
    // Started together: they race to create the trust material and the certificates.
    replicas.push(...(await Promise.all([1, 2, 3].map(start))));
  });
  after(async () => {
    await Promise.all(replicas.map((r) => r.close()));
    await etcd?.close();
    policy.cleanup();
    rmSync(keyDir, { recursive: true, force: true });
  });

  test('every replica serves every proxy byte-identical resources with identical versions', async () => {
    const tokens = ProxyTokens.open(replicas[0].stateDir, { create: false });
    for (const id of ['fleet/api-1', 'fleet/web-1']) {
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
