/**
 * Zero trust end to end through real Envoy sidecars: mTLS modes, the caller's SPIFFE id at the callee,
 * authorization (allow, deny naming its rule, default deny), JWT (valid 200, invalid 401, missing 403),
 * certificate rotation and root rotation under a steady stream of requests with no failures.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { runBootstrap } from '../../src/cli/bootstrap.js';
import { startApp, type App } from '../support/apps.js';
import { compileSource } from '../../src/compiler.js';
import { explain } from '../../src/explain/explain.js';
import { readDirectory } from '../../src/source/directory.js';
import { startEnvoy, type EnvoyProcess } from '../support/envoy.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { request, waitFor } from '../support/http.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';

const IP = { api: '127.0.4.1', good: '127.0.4.2', evil: '127.0.4.3' };
const APP_PORT = 19401;
const ISSUER = 'https://issuer.test';

function workload(name: string, sa: string, ip: string, ingress: boolean): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}, namespace: shop, labels: { app: ${sa} } }
spec: { address: ${ip}, serviceAccount: ${sa} }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: ${name}, namespace: shop }
spec:
  workloadSelector: { labels: { app: ${sa} } }
${ingress ? `  ingress:
    - port: { number: 8080, protocol: HTTP, name: http }
      defaultEndpoint: 127.0.0.1:${APP_PORT}
` : ''}  egress:
    - port: { number: 15001, protocol: HTTP, name: egress }
      hosts: ["./*"]
`;
}

const peerAuth = (mode: string) => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: api, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  mtls: { mode: ${mode} }
`;

const mesh = (ttl: string, rotateAt: number) => `apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec:
  certificates: { ttl: ${ttl}, rotateAt: ${rotateAt} }
`;

const AUTHZ = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: api-allow, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/shop/sa/good"] } }]
      to: [{ operation: { paths: ["/data/*"] } }]
    - from: [{ source: { requestPrincipals: ["${ISSUER}/*"] } }]
      to: [{ operation: { paths: ["/jwt/*"] } }]
    - to: [{ operation: { paths: ["/open/*"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: api-deny, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  action: DENY
  rules:
    - to: [{ operation: { paths: ["/data/secret"] } }]
`;

describe('zero trust end to end through real Envoy', { timeout: 240_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  let cp: ControlPlane;
  let xdsPort: number;
  let app: App;
  const envoys = new Map<string, EnvoyProcess>();
  let signingKey: CryptoKey;

  const sidecar = async (id: string): Promise<EnvoyProcess> => {
    const e = await startSidecar(cp, id);
    envoys.set(id, e);
    return e;
  };

  /** A request from `caller`'s application through its sidecar to the api service. */
  const call = (caller: 'good' | 'evil', path: string, headers: Record<string, string> = {}) =>
    request({ host: IP[caller], port: 15001, path: `http://api.shop.svc${path}`, headers: { host: 'api.shop.svc', ...headers } });

  const token = (claims: Record<string, unknown> = {}) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(ISSUER).setSubject('alice').setIssuedAt().setExpirationTime('10m').sign(signingKey);

  before(async () => {
    xdsPort = await freePort();
    const keys = await generateKeyPair('ES256');
    signingKey = keys.privateKey as CryptoKey;
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    policy.write('mesh.yaml', mesh('1h', 0.5));
    policy.write(
      'services.yaml',
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.shop.svc]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8080 }]
  workloadSelector: { labels: { app: api } }
`,
    );
    policy.write('api.yaml', workload('api-1', 'api', IP.api, true));
    policy.write('good.yaml', workload('good-1', 'good', IP.good, false));
    policy.write('evil.yaml', workload('evil-1', 'evil', IP.evil, false));
    policy.write('peer.yaml', peerAuth('STRICT'));
    policy.write('authz.yaml', AUTHZ);
    policy.write(
      'jwt.yaml',
      `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: api-jwt, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  jwtRules:
    - issuer: ${ISSUER}
      jwks: '${JSON.stringify({ keys: [jwk] })}'
      outputClaimToHeaders: [{ header: x-jwt-sub, claim: sub }]
`,
    );
    cp = await startPlane({ configDir: policy.dir, stateDir, xdsAddress: `127.0.0.1:${xdsPort}` });
    app = await startApp('api', '127.0.0.1', APP_PORT);
    await Promise.all(['shop/api-1', 'shop/good-1', 'shop/evil-1'].map(sidecar));
  });

  after(async () => {
    await Promise.all([...envoys.values()].map((e) => e.stop()));
    await app?.stop();
    await cp?.stop();
    policy.cleanup();
  });

  test('an allowed caller gets 200 and the callee sees its SPIFFE id', async () => {
    const r = await waitFor(async () => {
      const x = await call('good', '/data/1');
      return x.status === 200 ? x : undefined;
    }, { timeoutMs: 10_000, what: 'good -> api to succeed' });
    assert.match(r.json().headers['x-forwarded-client-cert'], /URI=spiffe:\/\/cluster\.local\/ns\/shop\/sa\/good/);
  });

  test('another identity gets 403; the access log names the deciding rule; with no matching ALLOW the default DENY holds', async () => {
    assert.equal((await call('evil', '/data/1')).status, 403);
    assert.equal((await call('good', '/data/secret')).status, 403);
    assert.equal((await call('good', '/elsewhere')).status, 403);
    const api = envoys.get('shop/api-1')!;
    const lines = await waitFor(() => {
      const ls = api.logs().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      return ls.filter((l) => l.response_code === 403).length >= 3 ? ls : undefined;
    }, { timeoutMs: 5000, what: 'three 403 lines in the access log' });
    const detail = (path: string) => lines.find((l) => l.path === path && l.response_code === 403)?.response_code_details;
    assert.equal(detail('/data/secret'), 'rbac_access_denied_matched_policy[shop/api-deny/rules[0]]');
    assert.equal(detail('/elsewhere'), 'rbac_access_denied_matched_policy[none]');
    const evilLine = lines.find((l) => l.path === '/data/1' && l.response_code === 403);
    assert.equal(evilLine.downstream_peer, 'spiffe://cluster.local/ns/shop/sa/evil');
  });

  test('JWT: a valid token passes, an invalid one gets 401, a missing one is left to authorization (403)', async () => {
    const ok = await call('evil', '/jwt/1', { authorization: `Bearer ${await token()}` });
    assert.equal(ok.status, 200);
    assert.equal(ok.json().headers['x-jwt-sub'], 'alice');
    const forged = (await token()).slice(0, -4) + 'AAAA';
    assert.equal((await call('evil', '/jwt/1', { authorization: `Bearer ${forged}` })).status, 401);
    assert.equal((await call('evil', '/jwt/1')).status, 403);
  });

  test('chancery explain predicts every outcome of a matrix of requests through real Envoy', async () => {
    const src = readDirectory(policy.dir);
    const model = compileSource(src.value, src.diagnostics).model!;
    const paths = ['/data/1', '/data/secret', '/elsewhere', '/jwt/1', '/open/1'];
    const rows: string[] = [];
    for (const caller of ['good', 'evil'] as const) {
      for (const path of paths) {
        for (const withJwt of [false, true]) {
          const headers: Record<string, string> = withJwt ? { authorization: `Bearer ${await token()}` } : {};
          const actual = (await call(caller, path, headers)).status;
          const e = explain(model, { from: `shop/${caller}-1`, to: 'api.shop.svc', path, ...(withJwt ? { jwtClaims: { iss: ISSUER, sub: 'alice' } } : {}) });
          rows.push(`${caller} ${path}${withJwt ? ' +jwt' : ''}: envoy ${actual}, explain ${e.status} (${e.destinations[0]?.decidedBy?.name ?? e.destinations[0]?.reason})`);
          assert.equal(e.status, actual, rows[rows.length - 1]);
        }
      }
    }
    console.log(`# explain agreed with Envoy on ${rows.length} requests`);
  });

  test('STRICT refuses a plaintext client; PERMISSIVE accepts plaintext and mTLS', async () => {
    const plain = () => request({ host: IP.api, port: 8080, path: '/open/1', timeoutMs: 2000 });
    await assert.rejects(plain(), 'STRICT: a plaintext connection is refused');
    policy.write('peer.yaml', peerAuth('PERMISSIVE'));
    const r = await waitFor(async () => {
      const x = await plain().catch(() => undefined);
      return x?.status === 200 ? x : undefined;
    }, { timeoutMs: 10_000, what: 'PERMISSIVE to accept plaintext' });
    assert.equal(r.json().headers['x-forwarded-client-cert'], undefined, 'no client certificate on plaintext');
    assert.equal((await call('good', '/data/2')).status, 200, 'mTLS still works');
    policy.write('peer.yaml', peerAuth('STRICT'));
    await waitFor(async () => (await plain().then(() => false, () => true)), { timeoutMs: 10_000, what: 'STRICT again' });
  });

  test("an Envoy presenting another workload's token, an expired one or none gets no configuration and no secret", async () => {
    const out = `${stateDir}/impostor.json`;
    assert.equal(await runBootstrap(['--config', policy.dir, '--workload', 'shop/evil-1', '--out', out, '--xds-address', `127.0.0.1:${xdsPort}`, '--state-dir', stateDir, '--initial-fetch-timeout', '1s', '--prometheus-port', '0']), 0);
    const base = JSON.parse(readFileSync(out, 'utf8'));
    const withToken = (token: string | undefined, admin: number) => {
      const b = structuredClone(base);
      b.node.id = 'shop/api-1'; // claims to be the api workload
      b.admin.address.socket_address = { address: '127.0.4.9', port_value: admin };
      const svc = b.dynamic_resources.ads_config.grpc_services[0];
      if (token === undefined) delete svc.initial_metadata;
      else svc.initial_metadata[0].value = `Bearer ${token}`;
      return b;
    };
    const cases: [string, string | undefined][] = [
      ["evil-1's own token, used as api-1", base.dynamic_resources.ads_config.grpc_services[0].initial_metadata[0].value.slice('Bearer '.length)],
      ['an expired token for api-1', await cp.tokens.issue('shop/api-1', 60, Date.now() - 3_600_000)],
      ['no token', undefined],
    ];
    let port = 15100;
    for (const [what, tok] of cases) {
      const e = startEnvoy(`impostor-${port}`, withToken(tok, port++));
      try {
        await e.waitReady(15_000); // LIVE after the initial fetch timeout, with nothing
        const dump = await e.configDump();
        const dynamic = JSON.stringify(dump.configs.map((c: any) => [c.dynamic_listeners, c.dynamic_active_clusters, c.dynamic_active_secrets]));
        assert.doesNotMatch(dynamic, /inbound|outbound|BEGIN/, `${what}: no listener, cluster or secret was received`);
      } finally {
        await e.stop();
      }
    }
  });

  test('certificates rotate under a steady stream of requests with no failures', async () => {
    const serial = () => cp.svids.status().find((s) => s.identity.endsWith('/sa/api'))!.serial;
    const before = serial();
    policy.write('mesh.yaml', mesh('60s', 0.1)); // a new TTL re-issues at once; then rotation about every 6 s
    await waitFor(() => serial() !== before, { timeoutMs: 5000, what: 'certificates re-issued under the new TTL' });
    const first = serial();
    let failures = 0;
    let total = 0;
    const deadline = Date.now() + 60_000;
    const seen = new Set([first]);
    while (seen.size < 3 && Date.now() < deadline) {
      const r = await call('good', '/data/steady').catch(() => undefined);
      total++;
      if (r?.status !== 200) failures++;
      seen.add(serial());
      await new Promise((res) => setTimeout(res, 20));
    }
    console.log(`# rotation: ${seen.size - 1} rotations of the api certificate during ${total} requests, ${failures} failures`);
    assert.ok(seen.size >= 3, 'the api certificate was replaced at least twice');
    assert.equal(failures, 0);
    policy.write('mesh.yaml', mesh('1h', 0.5));
  });

  test('root rotation end to end with no failed requests', async () => {
    const oldSigner = cp.authority.signerInfo().serial;
    let failures = 0;
    let total = 0;
    let rotating = true;
    const load = (async () => {
      while (rotating) {
        const r = await call('good', '/data/root').catch(() => undefined);
        total++;
        if (r?.status !== 200) failures++;
        await new Promise((res) => setTimeout(res, 10));
      }
    })();
    const t0 = Date.now();
    await cp.rotateRoot(30_000);
    const ms = Date.now() - t0;
    rotating = false;
    await load;
    console.log(`# root rotation: ${ms} ms in all (3 steps, each gated on every proxy ACKing its secrets); ${total} requests, ${failures} failures`);
    assert.notEqual(cp.authority.signerInfo().serial, oldSigner);
    assert.equal(cp.authority.trustBundlePem().match(/BEGIN CERTIFICATE/g)?.length, 1, 'the old root left the bundle');
    assert.equal(failures, 0);
    assert.equal((await call('good', '/data/after')).status, 200);
  });
});
