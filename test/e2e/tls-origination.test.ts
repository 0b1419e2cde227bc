/**
 * DestinationRule TLS origination through real Envoy (Istio's egress TLS origination task): the application sends
 * plain HTTP to its sidecar, which opens TLS to an external HTTPS server started by the test. SIMPLE verifies the
 * server against the given CA and the SNI; MUTUAL presents a client certificate; a server the CA does not vouch for
 * is refused (503) unless insecureSkipVerify.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ControlPlane } from '../../src/app/control-plane.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { request } from '../support/http.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { PolicyDir } from '../support/mesh-fixture.js';

const IP = { server: '127.0.37.1', caller: '127.0.37.2' };

describe('TLS origination to external services through real Envoy', { timeout: 180_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  const certs = mkdtempSync(path.join(os.tmpdir(), 'chancery-tls-'));
  let cp: ControlPlane;
  let envoy: EnvoyProcess;
  const servers: https.Server[] = [];
  const port = { simple: 0, mutual: 0 };

  before(async () => {
    // A CA, a server certificate for ext.example and a client certificate, made with openssl.
    const ssl = (args: string[]) => execFileSync('openssl', args, { cwd: certs, stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    ssl(['req', '-x509', ...ec, '-days', '2', '-subj', '/CN=test ca', '-keyout', 'ca.key', '-out', 'ca.pem']);
    for (const [name, san] of [
      ['server', 'DNS:ext.example'],
      ['client', 'URI:spiffe://client.test/app'],
    ]) {
      ssl(['req', ...ec, '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
      writeFileSync(path.join(certs, `${name}.ext`), `subjectAltName=${san}\n`);
      const sign = ['-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`];
      ssl(['x509', '-req', '-in', `${name}.csr`, ...sign, '-out', `${name}.pem`]);
    }
    const file = (n: string) => readFileSync(path.join(certs, n));
    for (const mode of ['simple', 'mutual'] as const) {
      const server = https.createServer(
        {
          cert: file('server.pem'),
          key: file('server.key'),
          ca: file('ca.pem'),
          requestCert: mode === 'mutual',
          rejectUnauthorized: mode === 'mutual',
        },
        (req, res) => {
          const sock = req.socket as TLSSocket;
          const peer = sock.getPeerCertificate();
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              mode,
              sni: sock.servername,
              client: peer?.subjectaltname ?? null,
              host: req.headers.host,
            }),
          );
        },
      );
      await new Promise<void>((r) => server.listen(0, IP.server, () => r()));
      port[mode] = (server.address() as AddressInfo).port;
      servers.push(server);
    }
    const external = (name: string, host: string, target: number, tls: string) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ns }
spec:
  hosts: [${host}]
  location: MESH_EXTERNAL
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: ${target} }]
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
    const ca = path.join(certs, 'ca.pem');
    policy.write(
      'mesh.yaml',
      `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: caller-1, namespace: ns, labels: { app: caller } }
spec: { address: ${IP.caller}, serviceAccount: caller }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: caller, namespace: ns }
spec:
  workloadSelector: { labels: { app: caller } }
  egress:
    - port: { number: 15001, protocol: HTTP, name: http }
      bind: ${IP.caller}
      hosts: ["./*"]
    - port: { number: 15443, protocol: TLS, name: tls }
      bind: ${IP.caller}
      hosts: ["./pass.example"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: pass, namespace: ns }
spec:
  hosts: [pass.example]
  location: MESH_EXTERNAL
  ports: [{ number: 443, name: https, protocol: HTTPS, targetPort: ${port.simple} }]
  resolution: STATIC
  endpoints: [{ address: ${IP.server} }]
${external('ext', 'ext.example', port.simple, `{ mode: SIMPLE, caCertificates: ${ca} }`)}${external(
        'mtls',
        'mtls.example',
        port.mutual,
        `{ mode: MUTUAL, sni: ext.example, caCertificates: ${ca}, clientCertificate: ${path.join(certs, 'client.pem')}, privateKey: ${path.join(certs, 'client.key')} }`,
      )}${external('nosni', 'other.example', port.simple, `{ mode: SIMPLE, caCertificates: ${ca} }`)}${external(
        'skip',
        'skip.example',
        port.simple,
        '{ mode: SIMPLE, insecureSkipVerify: true }',
      )}${external('plain', 'nomutual.example', port.mutual, `{ mode: SIMPLE, sni: ext.example, caCertificates: ${ca} }`)}`,
    );
    cp = await startPlane({ configDir: policy.dir, stateDir });
    envoy = await startSidecar(cp, 'ns/caller-1');
  });

  after(async () => {
    await envoy?.stop();
    for (const s of servers) s.close();
    await cp?.stop();
    policy.cleanup();
    rmSync(certs, { recursive: true, force: true });
  });

  const call = (host: string) => request({ host: IP.caller, port: 15001, path: `http://${host}/`, headers: { host } });

  test('SIMPLE: the sidecar opens TLS, verified against the CA and the SNI (the service host by default)', async () => {
    const r = await call('ext.example');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(
      { mode: r.json().mode, sni: r.json().sni, client: r.json().client },
      { mode: 'simple', sni: 'ext.example', client: null },
    );
  });

  test('MUTUAL: the sidecar presents the client certificate from the files', async () => {
    const r = await call('mtls.example');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().client, 'URI:spiffe://client.test/app');
    assert.equal((await call('nomutual.example')).status, 503, 'without a client certificate the server refuses');
  });

  test("HTTPS passthrough: the application's own TLS goes through a TLS egress listener untouched", async () => {
    const ca = readFileSync(path.join(certs, 'ca.pem'));
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.request(
        { host: IP.caller, port: 15443, path: '/', servername: 'ext.example', ca, headers: { host: 'ext.example' } },
        (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(b));
        },
      );
      req.on('error', reject);
      req.setTimeout(5000, () => req.destroy(new Error('timed out')));
      req.end();
    });
    assert.equal(JSON.parse(body).sni, 'ext.example', "the server saw the application's SNI");
  });

  test('a certificate that does not name the SNI is refused, unless insecureSkipVerify', async () => {
    assert.equal((await call('other.example')).status, 503);
    const r = await call('skip.example');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().sni, 'skip.example');
  });
});
