/**
 * DestinationRule TLS origination with `credentialName` through real Envoy: the client certificate and key (MUTUAL)
 * and the CA that verifies the server (`ca.crt`) come from `serve --credentials-dir DIR/<name>/`, over SDS, to the
 * sidecars whose clusters use them and to no other; a rotation on disk reaches new connections without a restart;
 * a missing credential rejects the revision at the credentialName line.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { ControlPlane } from '../../src/app/control-plane.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { request, waitFor } from '../support/http.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { testCa, testLeaf, writeCredential } from '../support/tls.js';

const IP = { server: '127.0.52.1', caller: '127.0.52.2', other: '127.0.52.3' };
const EXT = 'ext.example.test';

const external = (name: string, host: string, port: number, tls: string) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ns }
spec:
  hosts: [${host}]
  location: MESH_EXTERNAL
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: ${port} }]
  resolution: STATIC
  endpoints: [{ address: ${IP.server} }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: ns }
spec:
  host: ${host}
  trafficPolicy:
    tls: ${tls}
`;

const workload = (name: string, address: string, hosts: string) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}-1, namespace: ns, labels: { app: ${name} } }
spec: { address: ${address}, serviceAccount: ${name} }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: ${name}, namespace: ns }
spec:
  workloadSelector: { labels: { app: ${name} } }
  egress:
    - port: { number: 15001, protocol: HTTP, name: http }
      bind: ${address}
      hosts: [${hosts}]
`;

describe('TLS origination with credentials from --credentials-dir through real Envoy', { timeout: 180_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  const credentialsDir = `${policy.dir}-credentials`;
  const serverCa = testCa('server-ca.test');
  const clientCa = testCa('client-ca.test');
  const strangerCa = testCa('stranger-ca.test');
  const serverCert = testLeaf(serverCa, [EXT]);
  let clientCert = testLeaf(clientCa, ['caller.client.test']);
  let cp: ControlPlane;
  const envoys: EnvoyProcess[] = [];
  let server: https.Server;
  let port = 0;

  const mesh = (mtlsCredential = 'ext-client') =>
    workload('caller', IP.caller, '"./mtls.example.test", "./simple.example.test", "./stranger.example.test"') +
    workload('other', IP.other, '"./ca-only.example.test"') +
    external('mtls', 'mtls.example.test', port, `{ mode: MUTUAL, sni: ${EXT}, credentialName: ${mtlsCredential} }`) +
    external('simple', 'simple.example.test', port, `{ mode: SIMPLE, sni: ${EXT}, credentialName: ext-ca }`) +
    external('stranger', 'stranger.example.test', port, `{ mode: SIMPLE, sni: ${EXT}, credentialName: stranger }`) +
    // The client credential used only for its CA: the proxy that reaches this gets ca.crt, never tls.key.
    external('caonly', 'ca-only.example.test', port, `{ mode: SIMPLE, sni: ${EXT}, credentialName: ext-client }`);

  const writeCaOnly = (name: string, pem: string) => {
    mkdirSync(path.join(credentialsDir, name), { recursive: true });
    writeFileSync(path.join(credentialsDir, name, 'ca.crt'), pem);
  };

  before(async () => {
    // The server asks for a client certificate and verifies it when sent (MUTUAL); SIMPLE connects without one.
    server = https.createServer(
      {
        cert: serverCert.certPem,
        key: serverCert.keyPem,
        ca: clientCa.certPem,
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => {
        const sock = req.socket as TLSSocket;
        const peer = sock.getPeerCertificate();
        // Each request on a new upstream connection: a rotated certificate shows on the next request.
        res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
        const client = sock.authorized && peer?.serialNumber ? peer.serialNumber.toLowerCase() : null;
        res.end(JSON.stringify({ sni: sock.servername, client }));
      },
    );
    await new Promise<void>((r) => server.listen(0, IP.server, () => r()));
    port = (server.address() as AddressInfo).port;
    writeCredential(credentialsDir, 'ext-client', clientCert, { clientCa: serverCa });
    writeCaOnly('ext-ca', serverCa.certPem);
    writeCaOnly('stranger', strangerCa.certPem);
    policy.write('mesh.yaml', mesh());
    cp = await startPlane({ configDir: policy.dir, stateDir, credentialsDir });
    assert.equal(cp.current?.result.ok, true, JSON.stringify(cp.revisions.at(-1)?.diagnostics));
    envoys.push(await startSidecar(cp, 'ns/caller-1'), await startSidecar(cp, 'ns/other-1'));
  });

  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    server?.close();
    await cp?.stop();
    policy.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(credentialsDir, { recursive: true, force: true });
  });

  const call = (host: string, from = IP.caller) =>
    request({ host: from, port: 15001, path: `http://${host}/`, headers: { host } });

  test("MUTUAL: the sidecar presents the credential's certificate, verifies the server with its ca.crt", async () => {
    const r = await waitFor(
      async () => {
        const x = await call('mtls.example.test');
        return x.status === 200 ? x : undefined;
      },
      { timeoutMs: 15_000, what: 'a 200 through the MUTUAL origination' },
    );
    assert.deepEqual(r.json(), { sni: EXT, client: clientCert.serial });
  });

  test('SIMPLE: the credential supplies the CA only; a CA that does not vouch for the server is refused', async () => {
    const r = await call('simple.example.test');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json(), { sni: EXT, client: null });
    assert.equal((await call('stranger.example.test')).status, 503);
    const other = await call('ca-only.example.test', IP.other);
    assert.equal(other.status, 200, other.body);
    assert.equal(other.json().client, null, 'SIMPLE presents no client certificate');
  });

  test('each proxy gets the secrets its clusters use and no other (never a key it does not present)', async () => {
    const secrets = async (e: EnvoyProcess) => {
      const dump = await e.configDump();
      const s = dump.configs.find((c: any) => String(c['@type']).endsWith('SecretsConfigDump'));
      const names: string[] = (s?.dynamic_active_secrets ?? []).map((x: any) => x.name);
      return names.filter((n) => n.startsWith('credential://')).sort();
    };
    assert.deepEqual(await secrets(envoys[0]), [
      'credential://ext-ca-cacert',
      'credential://ext-client',
      'credential://ext-client-cacert',
      'credential://stranger-cacert',
    ]);
    assert.deepEqual(await secrets(envoys[1]), ['credential://ext-client-cacert']);
  });

  test('a client certificate rotated on disk reaches new connections without a restart', async () => {
    const pid = envoys[0].pid;
    const next = testLeaf(clientCa, ['caller.client.test']);
    writeCredential(credentialsDir, 'ext-client', next, { clientCa: serverCa });
    const rotated = async () => (await call('mtls.example.test')).json().client === next.serial;
    await waitFor(rotated, { timeoutMs: 15_000, what: 'the rotated client certificate to be presented' });
    assert.equal(envoys[0].pid, pid);
    assert.equal(envoys[0].exited, false);
    clientCert = next;
  });

  test('a missing credential rejects the revision at its line; the last good one keeps serving', async () => {
    const good = cp.current!.result.revision;
    policy.write('mesh.yaml', mesh('missing-cred'));
    const isRejected = () =>
      cp.revisions.find((r) => r.status === 'rejected' && r.diagnostics.some((d) => d.code === 'CH0308'));
    const rejected = await waitFor(isRejected, { timeoutMs: 10_000, what: 'the revision to be rejected' });
    const d = rejected.diagnostics.find((x) => x.code === 'CH0308')!;
    assert.equal(d.location?.file, 'mesh.yaml');
    const line =
      mesh('missing-cred')
        .split('\n')
        .findIndex((l) => l.includes('credentialName: missing-cred')) + 1;
    assert.equal(d.location?.line, line, 'the credentialName line');
    assert.equal(cp.current!.result.revision, good);
    assert.equal((await call('mtls.example.test')).json().client, clientCert.serial);
  });
});
