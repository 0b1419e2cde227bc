/**
 * The trust chain outlives rotation and restarts, through real Envoy sidecars that keep the bootstrap they were
 * started with: after a restart, a root rotation then a restart, and a rotation while running then a restart, all
 * three Envoys reconnect and take new configuration and certificates. A lost CA stops the control plane (naming the
 * file) instead of locking every Envoy out. The xDS server certificate is renewed while running. Rotating what the
 * bootstraps trust (the xDS CA) works in its two documented steps. A workload cannot get the control plane's
 * identity, and a server holding a mesh certificate for it is not trusted by Envoy, which gives it no token.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, renameSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlPlane } from '../../src/app/control-plane.js';
import { silentLogger } from '../../src/app/logger.js';
import { startStatusServer } from '../../src/admin/status-server.js';
import { runBootstrap } from '../../src/cli/bootstrap.js';
import { runRotateXdsCa } from '../../src/cli/rotate-xds-ca.js';
import * as X from '../../src/ca/x509.js';
import { XDS_CLUSTER } from '../../src/xds/names.js';
import { startApp, type App } from '../support/apps.js';
import { startEnvoy, type EnvoyProcess } from '../support/envoy.js';
import { request, waitFor } from '../support/http.js';
import { startPlane } from '../support/mesh-harness.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';

const NET = '127.0.22';
const IP = { api: `${NET}.1`, web: `${NET}.2`, bot: `${NET}.3`, app: `${NET}.4`, plane: `${NET}.5`, evil: `${NET}.6` };
const IDS = ['shop/api-1', 'shop/web-1', 'shop/bot-1'];
const SELF = 'spiffe://cluster.local/ns/istio-system/sa/chancery';

const workload = (name: string, sa: string, ip: string, sidecar: string) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}, namespace: shop, labels: { app: ${sa} } }
spec: { address: ${ip}, serviceAccount: ${sa} }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: ${name}, namespace: shop }
spec:
  workloadSelector: { labels: { app: ${sa} } }
${sidecar}`;

const callerSidecar = (ip: string) => `  egress:
    - port: { number: 15001, protocol: HTTP, name: egress }
      bind: ${ip}
      hosts: ["./*"]
`;

const policy = (denyPath: string, appPort: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.shop.svc]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8080 }]
  workloadSelector: { labels: { app: api } }
---
${workload(
  'api-1',
  'api',
  IP.api,
  `  ingress:
    - port: { number: 8080, protocol: HTTP, name: http }
      defaultEndpoint: ${IP.app}:${appPort}
`,
)}---
${workload('web-1', 'web', IP.web, callerSidecar(IP.web))}---
${workload('bot-1', 'bot', IP.bot, callerSidecar(IP.bot))}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: api-allow, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/shop/sa/web", "cluster.local/ns/shop/sa/bot"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: api-deny, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  action: DENY
  rules:
    - to: [{ operation: { paths: ["${denyPath}"] } }]
`;

/** What a TLS client trusting `caPem` makes of the xDS server's certificate. */
type Served = { serial: string; validTo: number; authorized: boolean };
function servedCertificate(port: number, ca: string): Promise<Served> {
  return new Promise((resolve, reject) => {
    // The chain only: Envoy matches the URI SAN itself (bootstrap match_typed_subject_alt_names).
    const checkServerIdentity = () => undefined;
    const o = { host: IP.plane, port, ca, ALPNProtocols: ['h2'], rejectUnauthorized: false, checkServerIdentity };
    const s = tls.connect(o, () => {
      const c = s.getPeerCertificate();
      resolve({ serial: c.serialNumber.toLowerCase(), validTo: Date.parse(c.valid_to), authorized: s.authorized });
      s.destroy();
    });
    s.once('error', reject);
  });
}

const xdsCluster = (bootstrap: any) => bootstrap.static_resources.clusters.find((c: any) => c.name === XDS_CLUSTER);
const trustOf = (bootstrap: any): string =>
  xdsCluster(bootstrap).transport_socket.typed_config.common_tls_context.validation_context.trusted_ca.inline_string;

/** Runs a CLI command with its output silenced (its exit code is what the test checks). */
async function quietly(fn: () => Promise<number>): Promise<number> {
  const [log, error] = [console.log, console.error];
  console.log = console.error = () => {};
  try {
    return await fn();
  } finally {
    [console.log, console.error] = [log, error];
  }
}

/** How often an Envoy refused the certificate of whatever answered at its xDS address. */
async function verifyFailures(e: EnvoyProcess): Promise<number> {
  const name = `cluster.${XDS_CLUSTER}.ssl.fail_verify_error`;
  return (await e.stats(name.replace(/\./g, '\\.')))[name] ?? 0;
}

describe('the trust chain outlives rotation and restarts (real Envoy)', { timeout: 300_000 }, () => {
  const dir = new PolicyDir();
  const stateDir = `${dir.dir}-state`;
  let cp: ControlPlane | undefined;
  let xdsPort: number;
  let appPort: number;
  let app: App;
  /** Bootstraps written once, at the start: the Envoys never get another one (except in the xDS CA rotation). */
  const bootstraps = new Map<string, any>();
  const envoys = new Map<string, EnvoyProcess>();

  const xdsAddress = () => `${IP.plane}:${xdsPort}`;
  const cpSettings = () => ({ configDir: dir.dir, stateDir, xdsAddress: xdsAddress(), maxNewStreamsPerSecond: 100 });
  const newPlane = async (extra: { xdsCertTtlMs?: number } = {}): Promise<ControlPlane> =>
    (cp = await startPlane({ ...cpSettings(), ...extra }));

  const writeBootstrap = async (id: string, extra: string[] = []): Promise<any> => {
    const out = path.join(stateDir, `bootstrap-${id.replace('/', '.')}.json`);
    const args = ['--config', dir.dir, '--workload', id, '--out', out];
    args.push('--state-dir', stateDir, '--xds-address', xdsAddress());
    assert.equal(await runBootstrap([...args, '--initial-fetch-timeout', '2s', ...extra]), 0, `bootstrap for ${id}`);
    return JSON.parse(readFileSync(out, 'utf8'));
  };

  const run = async (id: string, bootstrap: any, name = id): Promise<EnvoyProcess> => {
    await envoys.get(id)?.stop();
    const e = await startEnvoy({ name, config: bootstrap });
    envoys.set(id, e);
    return e;
  };

  const connected = () =>
    cp!.ads.registry
      .all()
      .filter((p) => p.connected)
      .map((p) => p.id)
      .sort();
  const allConnected = (what: string) =>
    waitFor(() => connected().length === 3, { timeoutMs: 30_000, what: `all three Envoys to reconnect (${what})` });

  const call = (from: 'web' | 'bot', p: string) =>
    request({
      host: IP[from],
      port: 15001,
      path: `http://api.shop.svc${p}`,
      headers: { host: 'api.shop.svc' },
      timeoutMs: 3000,
    });

  /** The workload certificate an Envoy holds (from its /certs), and the root it trusts. */
  const envoyCerts = async (id: string): Promise<{ serial: string; roots: string[] }> => {
    const certs = JSON.parse(await envoys.get(id)!.adminGet('/certs')).certificates as any[];
    const serial = certs.flatMap((c) => c.cert_chain ?? []).map((c: any) => c.serial_number.toLowerCase())[0];
    const roots = certs.flatMap((c) => c.ca_cert ?? []).map((c: any) => c.serial_number.toLowerCase());
    return { serial, roots };
  };

  /** Each Envoy holds the certificate the control plane issued for its identity now. */
  const certificatesCurrent = async (): Promise<boolean> => {
    const svids = new Map(cp!.svids.status().map((s) => [s.identity.split('/sa/')[1], s.serial]));
    for (const id of IDS) {
      const held = await envoyCerts(id);
      if (held.serial !== svids.get(id.split('/')[1].replace(/-1$/, ''))) return false;
      if (!held.roots.includes(cp!.authority.signerInfo().serial)) return false;
    }
    return true;
  };

  /** The new control plane drives the Envoys: a new DENY rule takes effect through web's and bot's sidecars. */
  const newConfigApplies = async (denyPath: string) => {
    dir.write('mesh.yaml', policy(denyPath, appPort));
    const denied = async (from: 'web' | 'bot') => (await call(from, denyPath)).status === 403;
    await waitFor(async () => (await denied('web')) && (await denied('bot')), {
      timeoutMs: 15_000,
      what: `the DENY of ${denyPath} to apply`,
    });
    assert.equal((await call('web', '/ok')).status, 200);
  };

  before(async () => {
    xdsPort = await freePort(IP.plane);
    appPort = await freePort(IP.app);
    dir.write('mesh.yaml', policy('/deny-0', appPort));
    app = await startApp({ name: 'api', host: IP.app, port: appPort });
    await newPlane();
    for (const id of IDS) bootstraps.set(id, await writeBootstrap(id));
    await Promise.all(IDS.map(async (id) => (await run(id, bootstraps.get(id))).waitReady()));
    await allConnected('first start');
    await waitFor(async () => (await call('web', '/ok')).status === 200, { timeoutMs: 10_000, what: 'web -> api' });
  });

  after(async () => {
    await Promise.all([...envoys.values()].map((e) => e.stop()));
    await app?.stop();
    await cp?.stop();
    dir.cleanup();
  });

  test('after a restart, every Envoy reconnects with its bootstrap and takes new configuration', async () => {
    await cp!.stop();
    assert.equal((await call('web', '/ok')).status, 200, 'traffic flows while the control plane is down');
    await newPlane();
    await allConnected('restart');
    await newConfigApplies('/deny-1');
  });

  test('after rotate-root and a restart, all three reconnect and get new configuration and certificates', async () => {
    const oldRoot = cp!.authority.signerInfo().serial;
    await cp!.rotateRoot(30_000);
    assert.notEqual(cp!.authority.signerInfo().serial, oldRoot);
    await cp!.stop();
    await newPlane();
    await allConnected('rotate-root, then restart');
    await newConfigApplies('/deny-2');
    await waitFor(certificatesCurrent, { timeoutMs: 15_000, what: 'certificates from the new root' });
    assert.equal((await call('bot', '/ok')).status, 200, 'mTLS between sidecars with the new certificates');
  });

  test('a restart, then rotate-root while running, then a restart again: still all three', async () => {
    await cp!.stop();
    await newPlane();
    await allConnected('restart');
    await cp!.rotateRoot(30_000);
    await cp!.stop();
    await newPlane();
    await allConnected('restart after the second rotation');
    await newConfigApplies('/deny-3');
    await waitFor(certificatesCurrent, { timeoutMs: 15_000, what: 'certificates of the second new root' });
  });

  test('a lost CA key stops the control plane, naming the file; Envoys keep serving; then all return', async () => {
    await cp!.stop();
    const key = path.join(stateDir, 'ca', 'root-key.pem');
    const ca = path.join(stateDir, 'ca');
    cpSync(ca, `${ca}.backup`, { recursive: true });
    rmSync(key);
    let err: Error | undefined;
    try {
      const refused = new ControlPlane({ ...cpSettings(), watch: false }, silentLogger);
      err = await refused.start().then(
        () => undefined,
        (e: Error) => e,
      );
      await refused.stop();
      assert.equal((await call('web', '/ok')).status, 200, 'the Envoys keep their configuration meanwhile');
    } finally {
      rmSync(ca, { recursive: true }); // the backup goes back whole (a start that generated a new root wrote both)
      renameSync(`${ca}.backup`, ca);
      await newPlane();
    }
    assert.ok(err, 'the control plane refused to start');
    assert.ok(err.message.includes(key) && /missing/.test(err.message), err.message);
    await allConnected('CA restored');
    await newConfigApplies('/deny-4');
  });

  test('the xDS server certificate is renewed while running: Envoys connect after the first one expired', async () => {
    await cp!.stop();
    await newPlane({ xdsCertTtlMs: 6_000 }); // renewed every 3 s
    try {
      await renewedWhileRunning();
    } finally {
      await cp!.stop();
      await newPlane();
    }
    await allConnected('back to the default lifetime');
  });

  const renewedWhileRunning = async (): Promise<void> => {
    await allConnected('restart');
    const trust = trustOf(bootstraps.get('shop/bot-1'));
    const first = await servedCertificate(xdsPort, trust);
    assert.ok(first.authorized, 'the first certificate chains to what the bootstrap trusts');
    const renewed = await waitFor(
      async () => {
        const c = await servedCertificate(xdsPort, trust);
        return c.serial !== first.serial && Date.now() > first.validTo + 1000 ? c : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: 'a renewed certificate, after the first one expired' },
    );
    assert.ok(renewed.authorized, 'the renewed certificate chains to the same anchor');
    assert.ok(renewed.validTo > Date.now());
    // A fresh TLS handshake from a stock Envoy on its original bootstrap, without any restart of the control plane.
    const bot = await run('shop/bot-1', bootstraps.get('shop/bot-1'));
    await bot.waitReady();
    await allConnected('bot restarted on its original bootstrap');
    assert.equal((await call('bot', '/ok')).status, 200);
    assert.ok(cp!.serving!.issued >= 3, 'renewed at least twice');
  };

  test('no workload gets the control plane identity; a server with a mesh cert for it gets no token', async () => {
    const rejected = `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: impostor, namespace: istio-system }
spec:
  address: ${IP.evil}
  serviceAccount: chancery
`;
    dir.write('impostor.yaml', rejected);
    try {
      const reserved = (r: ControlPlane['revisions'][number]) => r.diagnostics.some((d) => d.code === 'CH0409');
      const record = await waitFor(() => cp!.revisions.find((r) => r.status === 'rejected' && reserved(r)), {
        timeoutMs: 10_000,
        what: 'the revision naming the impostor to be rejected',
      });
      const d = record.diagnostics.find((x) => x.code === 'CH0409')!;
      assert.deepEqual([d.location?.file, d.location?.line], ['impostor.yaml', 6]);
      await assert.rejects(cp!.authority.issue(SELF, 60_000), /reserved/);
    } finally {
      dir.remove('impostor.yaml');
    }

    // The worst a workload could ever hold: a certificate for the control plane's id from the mesh root itself.
    const caFile = (f: string) => readFileSync(path.join(stateDir, 'ca', f), 'utf8');
    const rootDer = X.fromPem(caFile('root-cert.pem'), 'CERTIFICATE')[0];
    const root = X.signerFrom(rootDer, X.importPrivateKeyPem(caFile('root-key.pem')));
    const keys = X.generateKeyPair();
    const [from, to] = [new Date(Date.now() - 60_000), new Date(Date.now() + 3_600_000)];
    const leaf = X.issueLeaf(root, SELF, keys.publicKey, from, to);
    const seen: string[] = [];
    const [key, cert] = [X.exportPrivateKeyPem(keys.privateKey), X.toPem(leaf.der, 'CERTIFICATE')];
    const impostor = http2.createSecureServer({ key, cert, ALPNProtocols: ['h2'] });
    impostor.on('stream', (s, headers) => {
      seen.push(String(headers.authorization ?? '(none)'));
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
    });
    const port = await freePort(IP.evil);
    await new Promise<void>((r) => impostor.listen(port, IP.evil, r));
    const b = structuredClone(await writeBootstrap('shop/web-1', ['--prometheus-port', '0']));
    b.admin.address.socket_address = { address: IP.evil, port_value: 0 };
    const endpoint = xdsCluster(b).load_assignment.endpoints[0].lb_endpoints[0].endpoint;
    endpoint.address.socket_address = { address: IP.evil, port_value: port };
    const e = await startEnvoy({ name: 'web-1-to-impostor', config: b });
    try {
      await waitFor(async () => (await verifyFailures(e)) >= 2, {
        timeoutMs: 15_000,
        what: "Envoy to refuse the impostor's certificate",
      });
      assert.deepEqual(seen, [], 'the impostor received no stream, so no token');
    } finally {
      await e.stop();
      await new Promise((r) => impostor.close(r));
    }
  });

  test('rotating the CA bootstraps trust: begin, redeploy, finish; Envoys on old bootstraps are shut out', async () => {
    const oldTrust = trustOf(bootstraps.get('shop/web-1'));
    // Through the documented command, against the running control plane's admin API.
    const admin = await startStatusServer(cp!, IP.plane, 0);
    const url = `http://${IP.plane}:${(admin.address() as AddressInfo).port}`;
    const rotate = (step: string) =>
      quietly(() => runRotateXdsCa([step, '--admin', url, '--state-dir', cp!.settings.stateDir]));
    try {
      assert.equal(await rotate('finish'), 1, 'finish before begin is refused');
      assert.equal(await rotate('begin'), 0);
      assert.equal(await rotate('begin'), 1, 'one rotation at a time');
    } finally {
      admin.close();
    }
    const web = await writeBootstrap('shop/web-1');
    assert.equal(trustOf(web).match(/BEGIN CERTIFICATE/g)?.length, 2, 'bootstraps written after begin trust both');
    await (await run('shop/web-1', web)).waitReady(); // redeployed on the new bootstrap, still served by the old CA
    await allConnected('web redeployed');
    await cp!.rotateXdsCa('finish'); // (the same as the command's finish)
    const served = await servedCertificate(xdsPort, trustOf(web));
    assert.ok(served.authorized, 'the new server certificate chains to the new CA');
    assert.equal((await servedCertificate(xdsPort, oldTrust)).authorized, false, 'and not to the old one');
    await cp!.stop();
    await newPlane();
    await waitFor(() => connected().includes('shop/web-1'), { timeoutMs: 30_000, what: 'the new web to reconnect' });
    await waitFor(async () => (await verifyFailures(envoys.get('shop/bot-1')!)) >= 1, {
      timeoutMs: 30_000,
      what: 'bot, still on its old bootstrap, to fail verification',
    });
    assert.ok(!connected().includes('shop/bot-1'));
    assert.equal((await call('bot', '/ok')).status, 200, 'it keeps its configuration');
  });
});
