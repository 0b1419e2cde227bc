/**
 * Istio's AuthorizationPolicy semantics, each proven with real Envoy: trust-domain aliases and `cluster.local`
 * (certificates from two trust domains of one root), `principals: ["*"]` needing a client certificate,
 * `requestPrincipals` matched exactly (a value without `/` means an empty subject; `iss/*` needs a subject),
 * namespaces, serviceAccounts, path templates, destination.ip, and dry-run policies that decide nothing but are
 * logged. The requests go straight to the callee's sidecar, as a workload with its own certificate (or none) can
 * send them; those a caller's sidecar can make are also checked against `explain`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { compileSource } from '../../src/compiler.js';
import { explain } from '../../src/explain/explain.js';
import type { MeshModel } from '../../src/model/mesh-model.js';
import { readDirectory } from '../../src/source/directory.js';
import { startApp, type App } from '../support/apps.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { waitFor } from '../support/http.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { rawHttp1, type RawTarget } from '../support/attack-http.js';

const IP = { api: '127.0.32.1', good: '127.0.32.2' };
const APP_PORT = 19321;

const MESH = `apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec:
  trustDomain: new.td
  trustDomainAliases: [old.td]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.shop.svc]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8080 }]
  workloadSelector: { labels: { app: api } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: api-1, namespace: shop, labels: { app: api } }
spec: { address: ${IP.api}, serviceAccount: api }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: good-1, namespace: shop, labels: { app: good } }
spec: { address: ${IP.good}, serviceAccount: good }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: api, namespace: shop }
spec:
  workloadSelector: { labels: { app: api } }
  ingress:
    - port: { number: 8080, protocol: HTTP, name: http }
      defaultEndpoint: 127.0.0.1:${APP_PORT}
---
# PERMISSIVE, so a caller without a certificate reaches the authorization step.
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: api, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  mtls: { mode: PERMISSIVE }
`;

const POLICIES = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: api, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/shop/sa/good"] } }]
      to: [{ operation: { paths: ["/td/*"] } }]
    - from: [{ source: { principals: ["*"] } }]
      to: [{ operation: { paths: ["/any-peer/*"] } }]
    - from: [{ source: { requestPrincipals: ["issuer-1"] } }]
      to: [{ operation: { paths: ["/nosub/*"] } }]
    - from: [{ source: { requestPrincipals: ["https://issuer.test/*"] } }]
      to: [{ operation: { paths: ["/anysub/*"] } }]
    - from: [{ source: { namespaces: ["shop"] } }]
      to: [{ operation: { paths: ["/ns/*"] } }]
    - from: [{ source: { serviceAccounts: ["good"] } }]
      to: [{ operation: { paths: ["/sa/*"] } }]
    - to: [{ operation: { paths: ["/tpl/{*}/items/{**}"] } }]
    - to: [{ operation: { paths: ["/dip/*"] } }]
      when: [{ key: destination.ip, values: ["${IP.api}/32"] }]
    - to: [{ operation: { paths: ["/dip2/*"] } }]
      when: [{ key: destination.ip, values: ["10.0.0.0/8"] }]
    - to: [{ operation: { paths: ["/dry/*"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: dry-deny
  namespace: shop
  annotations: { istio.io/dry-run: "true" }
spec:
  selector: { matchLabels: { app: api } }
  action: DENY
  rules:
    - to: [{ operation: { paths: ["/dry/deny/*"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: dry-allow
  namespace: shop
  annotations: { istio.io/dry-run: "true" }
spec:
  selector: { matchLabels: { app: api } }
  rules:
    - to: [{ operation: { paths: ["/dryallow/*"] } }]
`;

describe('Istio authorization semantics through real Envoy', { timeout: 240_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  let cp: ControlPlane;
  let model: MeshModel;
  let app: App;
  const envoys = new Map<string, EnvoyProcess>();
  let signingKey: CryptoKey;
  const certs = new Map<string, { cert: string; key: string; ca: string }>();

  before(async () => {
    const keys = await generateKeyPair('ES256');
    signingKey = keys.privateKey as CryptoKey;
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const jwt = `---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: api-jwt, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  jwtRules:
    - issuer: issuer-1
      jwks: '${JSON.stringify({ keys: [jwk] })}'
      outputPayloadToHeader: x-jwt-payload
    - issuer: https://issuer.test
      jwks: '${JSON.stringify({ keys: [jwk] })}'
      forwardOriginalToken: true
`;
    policy.write('mesh.yaml', MESH).write('authz.yaml', POLICIES + jwt);
    cp = await startPlane({ configDir: policy.dir, stateDir });
    const src = readDirectory(policy.dir);
    const compiled = compileSource(src.value, src.diagnostics);
    assert.ok(compiled.ok, JSON.stringify(compiled.diagnostics));
    model = compiled.model!;
    app = await startApp({ name: 'api', host: '127.0.0.1', port: APP_PORT });
    for (const id of ['shop/api-1', 'shop/good-1']) envoys.set(id, await startSidecar(cp, id));
    const ca = cp.authority.trustBundlePem();
    // The same root signs identities of the mesh's trust domain, of its alias, and of a stranger.
    for (const id of [
      'spiffe://new.td/ns/shop/sa/good',
      'spiffe://old.td/ns/shop/sa/good',
      'spiffe://evil.td/ns/shop/sa/good',
      'spiffe://new.td/ns/other/sa/good',
    ]) {
      const c = await cp.authority.issue(id, 3_600_000);
      certs.set(id, { cert: c.chainPem, key: c.keyPem, ca });
    }
  });

  after(async () => {
    await Promise.all([...envoys.values()].map((e) => e.stop()));
    await app?.stop();
    await cp?.stop();
    policy.cleanup();
  });

  const token = (iss: string, sub?: string) => {
    const t = new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(iss)
      .setIssuedAt()
      .setExpirationTime('10m');
    return (sub === undefined ? t : t.setSubject(sub)).sign(signingKey);
  };

  /** Status of a request straight to api-1's sidecar, with a certificate (mTLS) or without (plaintext). */
  const call = async (path: string, o: { as?: string; bearer?: string } = {}) => {
    const target: RawTarget = { host: IP.api, port: 8080, ...(o.as ? { tls: certs.get(o.as)! } : {}) };
    const headers: Record<string, string> = o.bearer ? { authorization: `Bearer ${o.bearer}` } : {};
    return (await rawHttp1(target, { path, authority: 'api.shop.svc', headers })).status;
  };

  const NEW = 'spiffe://new.td/ns/shop/sa/good';
  const OLD = 'spiffe://old.td/ns/shop/sa/good';
  const EVIL = 'spiffe://evil.td/ns/shop/sa/good';
  const OTHER_NS = 'spiffe://new.td/ns/other/sa/good';

  test('cluster.local stands for the trust domain and its aliases; a foreign trust domain is refused', async () => {
    assert.equal(await call('/td/x', { as: NEW }), 200);
    assert.equal(await call('/td/x', { as: OLD }), 200, 'an alias identity is the same identity');
    await assert.rejects(
      call('/td/x', { as: EVIL }),
      'a certificate of another trust domain is refused at the handshake',
    );
    assert.equal(await call('/td/x'), 403, 'plaintext carries no identity');
  });

  test('principals ["*"] needs a client certificate, not just a connection', async () => {
    assert.equal(await call('/any-peer/x', { as: OTHER_NS }), 200);
    assert.equal(await call('/any-peer/x'), 403);
  });

  test('requestPrincipals: a value without "/" is that issuer with an empty subject; "iss/*" needs a subject', async () => {
    assert.equal(await call('/nosub/x', { bearer: await token('issuer-1', '') }), 200);
    assert.equal(
      await call('/nosub/x', { bearer: await token('issuer-1', 'alice') }),
      403,
      'any subject is not "no subject"',
    );
    assert.equal(await call('/nosub/x', { bearer: await token('issuer-1') }), 403, 'a token without sub');
    assert.equal(await call('/anysub/x', { bearer: await token('https://issuer.test', 'alice') }), 200);
    assert.equal(
      await call('/anysub/x', { bearer: await token('https://issuer.test') }),
      403,
      '"*" means a non-empty subject',
    );
    assert.equal(await call('/anysub/x'), 403);
  });

  test('namespaces and serviceAccounts match the peer identity as Istio does', async () => {
    assert.equal(await call('/ns/x', { as: NEW }), 200);
    assert.equal(await call('/ns/x', { as: OTHER_NS }), 403);
    assert.equal(await call('/ns/x'), 403);
    assert.equal(await call('/sa/x', { as: OLD }), 200, 'serviceAccounts ignore the trust domain');
    assert.equal(await call('/sa/x', { as: OTHER_NS }), 403, 'good in namespace other is another service account');
  });

  test('outputPayloadToHeader carries the verified payload; a forged one never reaches the app', async () => {
    app.reset();
    const forged = Buffer.from(JSON.stringify({ iss: 'issuer-1', sub: 'admin' })).toString('base64url');
    const r = await rawHttp1(
      { host: IP.api, port: 8080 },
      { path: '/dry/x', authority: 'api.shop.svc', headers: { 'x-jwt-payload': forged } },
    );
    assert.equal(r.status, 200);
    assert.equal(app.requests[0].headers['x-jwt-payload'], undefined, 'the caller wrote it, not the JWT filter');
    app.reset();
    assert.equal(await call('/nosub/x', { bearer: await token('issuer-1', '') }), 200);
    const payload = JSON.parse(Buffer.from(String(app.requests[0].headers['x-jwt-payload']), 'base64url').toString());
    assert.equal(payload.iss, 'issuer-1');
  });

  test('a forged token sent beside a valid one is refused, whichever comes first (forwardOriginalToken)', async () => {
    const alice = await token('https://issuer.test', 'alice');
    const claims = Buffer.from(JSON.stringify({ iss: 'https://issuer.test', sub: 'admin' })).toString('base64url');
    const forged = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${claims}.`;
    for (const order of [
      [alice, forged],
      [forged, alice],
    ]) {
      app.reset();
      const headers = { authorization: order.map((t) => `Bearer ${t}`) };
      const r = await rawHttp1({ host: IP.api, port: 8080 }, { path: '/anysub/x', authority: 'api.shop.svc', headers });
      assert.equal(r.status, 401, 'Envoy verifies every token it finds: one bad token refuses the request');
      assert.equal(app.requests.length, 0, 'the forged token never reaches the app');
    }
    app.reset();
    const r = await rawHttp1(
      { host: IP.api, port: 8080 },
      { path: '/anysub/x', authority: 'api.shop.svc', headers: { authorization: `Bearer ${alice}` } },
    );
    assert.equal(r.status, 200);
    assert.equal(app.requests[0].headers.authorization, `Bearer ${alice}`, 'forwardOriginalToken: the app gets it');
  });

  test('path templates: {*} is one segment, {**} the rest', async () => {
    assert.equal(await call('/tpl/a/items/x/y'), 200);
    assert.equal(await call('/tpl/a/items/'), 200);
    assert.equal(await call('/tpl/a/b/items/x'), 403);
    assert.equal(await call('/tpl//items/x'), 403, 'after merging slashes there is no segment for {*}');
    assert.equal(await call('/tpl/a/items'), 403);
  });

  test('destination.ip is the address the connection was made to', async () => {
    assert.equal(await call('/dip/x'), 200);
    assert.equal(await call('/dip2/x'), 403);
  });

  test('dry-run policies decide nothing; the access log shows what they would have decided', async () => {
    assert.equal(await call('/dry/deny/x', { as: NEW }), 200, 'a dry-run DENY denies nothing');
    assert.equal(await call('/dryallow/x', { as: NEW }), 403, 'a dry-run ALLOW allows nothing');
    const lines = () =>
      envoys
        .get('shop/api-1')!
        .logs()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, string>);
    const deny = await waitFor(() => lines().find((l) => l.path === '/dry/deny/x'), {
      timeoutMs: 15_000,
      what: 'the access log line',
    });
    assert.equal(deny.dry_run_deny_result, 'denied');
    assert.equal(deny.dry_run_deny_policy, 'shop/dry-deny/rules[0]');
    const allow = await waitFor(() => lines().find((l) => l.path === '/dryallow/x'), {
      timeoutMs: 15_000,
      what: 'the access log line',
    });
    assert.equal(allow.dry_run_allow_result, 'allowed');
    assert.equal(allow.dry_run_allow_policy, 'shop/dry-allow/rules[0]');
    assert.match(allow.response_code_details, /rbac_access_denied_matched_policy\[none\]/);
    // explain tells the same story through the caller's sidecar.
    const d = explain(model, { from: 'shop/good-1', to: 'api.shop.svc', path: '/dry/deny/x' }).destinations[0];
    assert.equal(d.status, 200);
    assert.deepEqual(d.dryRun?.deny, { result: 'denied', policy: 'shop/dry-deny/rules[0]' });
    const a = explain(model, { from: 'shop/good-1', to: 'api.shop.svc', path: '/dryallow/x' }).destinations[0];
    assert.equal(a.status, 403);
    assert.deepEqual(a.dryRun?.allow, { result: 'allowed', policy: 'shop/dry-allow/rules[0]' });
  });

  test("explain agrees with the sidecars for the requests the caller's sidecar can make", async () => {
    const paths = [
      '/td/x',
      '/any-peer/x',
      '/ns/x',
      '/sa/x',
      '/tpl/a/items/x',
      '/tpl/a/b/items/x',
      '/dip/x',
      '/dip2/x',
      '/nosub/x',
    ];
    for (const path of paths) {
      const e = explain(model, { from: 'shop/good-1', to: 'api.shop.svc', path });
      const r = await rawHttp1({ host: IP.good, port: 15001 }, { path, authority: 'api.shop.svc' });
      assert.equal(
        r.status,
        e.status,
        `${path}: Envoy ${r.status}, explain ${e.status} (${e.destinations[0]?.reason})`,
      );
    }
  });
});
