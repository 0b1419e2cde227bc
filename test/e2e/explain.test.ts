/**
 * `chancery explain` against real Envoy sidecars. A mesh of three services (api: STRICT, JWT, ALLOW/DENY/AUDIT rules
 * with every Istio string form, negations and when-conditions, plus a VirtualService that rewrites paths, sets
 * headers and answers directly; files: PERMISSIVE, no RequestAuthentication; legacy: mTLS DISABLE, IP rules) and
 * four callers (three identities in two namespaces, one whose Sidecar egress scope leaves api out). A matrix of
 * requests goes through the real sidecars; for every one, explain must predict the status the caller gets, the
 * rule the callee's access log names for a denial (`rbac_access_denied_matched_policy[...]`), and whether the
 * caller's SPIFFE id reached the application.
 *
 * Addresses 127.0.6.x and application ports 19601-19603 belong to this file only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { compileSource } from '../../src/compiler.js';
import { explain, formatExplanation, type Explanation } from '../../src/explain/explain.js';
import type { MeshModel } from '../../src/model/mesh-model.js';
import { readDirectory } from '../../src/source/directory.js';
import { startApp, type App } from '../support/apps.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { request, waitFor } from '../support/http.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';

const IP = {
  api: '127.0.6.1',
  files: '127.0.6.2',
  legacy: '127.0.6.3',
  web: '127.0.6.11',
  bot: '127.0.6.12',
  ops: '127.0.6.13',
  lonely: '127.0.6.14',
};
const APP = { api: 19601, files: 19602, legacy: 19603 };
const ISSUER = 'https://issuer.test';
const ISSUER2 = 'https://partner.test';
const ISSUER3 = 'https://stranger.test';

const service = (name: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8080 }]
  workloadSelector: { labels: { app: ${name} } }
`;

const workload = (name: string, ns: string, sa: string, ip: string) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}, namespace: ${ns}, labels: { app: ${sa} } }
spec: { address: ${ip}, serviceAccount: ${sa} }
`;

const calleeSidecar = (name: keyof typeof APP) => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: ${name}, namespace: shop }
spec:
  workloadSelector: { labels: { app: ${name} } }
  ingress:
    - port: { number: 8080, protocol: HTTP, name: http }
      defaultEndpoint: 127.0.0.1:${APP[name]}
`;

const peer = (name: string, mode: string) => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ${name}, namespace: shop }
spec:
  selector: { matchLabels: { app: ${name} } }
  mtls: { mode: ${mode} }
`;

const API_AUTHZ = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: api-allow, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/shop/sa/web"] } }]
      to: [{ operation: { methods: [GET], paths: ["/products/*", "/health"] } }]
    - from: [{ source: { namespaces: ["ops"] } }]
      to: [{ operation: { paths: ["/admin/*"], notMethods: [DELETE] } }]
    - from: [{ source: { requestPrincipals: ["${ISSUER}/alice"] } }]
      to: [{ operation: { methods: [GET, POST], paths: ["/orders/*"] } }]
    - from: [{ source: { principals: ["*/sa/bot"] } }]
      to: [{ operation: { paths: ["*/report"] } }]
      when: [{ key: "request.headers[x-api-key]", values: ["k-*"] }]
    - to: [{ operation: { paths: ["/reports/*"] } }]
      when: [{ key: "request.auth.claims[groups]", values: ["admins"] }]
    - to: [{ operation: { hosts: ["api.shop.svc"], paths: ["/public"] } }]
    - to: [{ operation: { paths: ["/whoami"] } }]
      when: [{ key: "request.headers[x-jwt-sub]", values: ["carol"] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: api-deny, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  action: DENY
  rules:
    - to: [{ operation: { paths: ["/admin/secrets*"] } }]
    - from: [{ source: { namespaces: ["shop"], notPrincipals: ["cluster.local/ns/shop/sa/web"] } }]
      to: [{ operation: { paths: ["/products/private"] } }]
    - when: [{ key: "request.headers[x-debug]", values: ["*"] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: api-audit, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  action: AUDIT
  rules:
    - to: [{ operation: { paths: ["/products/*"] } }]
`;

const FILES_AUTHZ = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: files-allow, namespace: shop }
spec:
  selector: { matchLabels: { app: files } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/shop/sa/web"] } }]
    - from: [{ source: { requestPrincipals: ["*"] } }]
      to: [{ operation: { paths: ["/jwt/*"] } }]
`;

const LEGACY_AUTHZ = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: legacy-allow, namespace: shop }
spec:
  selector: { matchLabels: { app: legacy } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/shop/sa/web"] } }]
    - from: [{ source: { notPrincipals: ["cluster.local/ns/shop/sa/bot"] } }]
      to: [{ operation: { paths: ["/np/*"] } }]
    - from: [{ source: { ipBlocks: ["127.0.0.1/32"] } }]
      to: [{ operation: { paths: ["/ip/*"] } }]
    # X-Forwarded-For is the caller's to write: remote.ip is the connection's peer (Mesh numTrustedProxies: 0).
    - to: [{ operation: { paths: ["/xff/*"] } }]
      when: [{ key: remote.ip, values: ["10.9.8.0/24"] }]
    - to: [{ operation: { paths: ["/remote/*"] } }]
      when: [{ key: remote.ip, values: ["127.0.0.1/32"] }]
`;

const TRAFFIC = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.shop.svc]
  http:
    - name: v2
      match: [{ uri: { prefix: /v2/ } }]
      rewrite: { uri: /products/ }
      route: [{ destination: { host: api.shop.svc } }]
    - name: debug
      match: [{ uri: { prefix: /dbg/ } }]
      headers: { request: { set: { x-debug: "on" } } }
      route: [{ destination: { host: api.shop.svc } }]
    - name: gone
      match: [{ uri: { exact: /gone } }]
      directResponse: { status: 410 }
    - route: [{ destination: { host: api.shop.svc } }]
`;

type Caller = 'web' | 'bot' | 'ops' | 'lonely';
type Token = 'alice' | 'bob' | 'carol' | 'partner-other' | 'partner-api' | 'stranger';

interface Case {
  to: 'api' | 'files' | 'legacy';
  path: string;
  method?: string;
  headers?: Record<string, string>;
  token?: Token;
}

const CASES: Case[] = [
  { to: 'api', path: '/products/1' },
  { to: 'api', path: '/products/1', headers: { 'x-debug': '1' } },
  { to: 'api', path: '/products/1', method: 'POST' },
  { to: 'api', path: '/products/private' },
  { to: 'api', path: '/health' },
  { to: 'api', path: '/healthz' },
  { to: 'api', path: '/admin/users' },
  { to: 'api', path: '/admin/users', method: 'DELETE' },
  { to: 'api', path: '/admin/secrets/db' },
  { to: 'api', path: '/v2/7' },
  { to: 'api', path: '/dbg/x' },
  { to: 'api', path: '/gone' },
  { to: 'api', path: '/public' },
  { to: 'api', path: '/public', headers: { host: 'API.shop.svc' } },
  { to: 'api', path: '/daily/report', headers: { 'x-api-key': 'k-123' } },
  { to: 'api', path: '/daily/report', headers: { 'x-api-key': 'zzz' } },
  { to: 'api', path: '/orders/1', token: 'alice' },
  { to: 'api', path: '/orders/1', method: 'POST', token: 'alice' },
  { to: 'api', path: '/orders/1', method: 'PUT', token: 'alice' },
  { to: 'api', path: '/orders/1', token: 'bob' },
  { to: 'api', path: '/orders/1' },
  { to: 'api', path: '/reports/q', token: 'carol' },
  { to: 'api', path: '/reports/q', token: 'bob' },
  { to: 'api', path: '/whoami', token: 'carol' },
  { to: 'api', path: '/whoami', headers: { 'x-jwt-sub': 'carol' } },
  { to: 'api', path: '/orders/1', token: 'partner-other' },
  { to: 'api', path: '/orders/1', token: 'partner-api' },
  { to: 'api', path: '/orders/1', token: 'stranger' },
  { to: 'files', path: '/f' },
  { to: 'files', path: '/jwt/x', token: 'alice' },
  { to: 'legacy', path: '/data' },
  { to: 'legacy', path: '/np/1' },
  { to: 'legacy', path: '/ip/1' },
  { to: 'legacy', path: '/xff/1', headers: { 'x-forwarded-for': '10.9.8.7' } },
  { to: 'legacy', path: '/xff/1' },
  { to: 'legacy', path: '/remote/1', headers: { 'x-forwarded-for': '10.9.8.7' } },
];

describe('explain predicts what real Envoy sidecars do', { timeout: 240_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  let cp: ControlPlane;
  let model: MeshModel;
  const apps: App[] = [];
  const envoys = new Map<string, EnvoyProcess>();
  const tokens = new Map<Token, string>();

  before(async () => {
    const keys = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const jwks = JSON.stringify({ keys: [jwk] });
    const sign = (iss: string, sub: string, claims: Record<string, unknown> = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(iss)
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime('30m')
        .sign(keys.privateKey);
    tokens.set('alice', await sign(ISSUER, 'alice'));
    tokens.set('bob', await sign(ISSUER, 'bob', { groups: ['staff'] }));
    tokens.set('carol', await sign(ISSUER, 'carol', { groups: ['staff', 'admins'] }));
    tokens.set('partner-other', await sign(ISSUER2, 'alice', { aud: 'other' }));
    tokens.set('partner-api', await sign(ISSUER2, 'alice', { aud: ['api', 'x'] }));
    tokens.set('stranger', await sign(ISSUER3, 'alice'));

    policy.write('services.yaml', ['api', 'files', 'legacy'].map(service).join('---\n'));
    policy.write(
      'workloads.yaml',
      [
        workload('api-1', 'shop', 'api', IP.api),
        workload('files-1', 'shop', 'files', IP.files),
        workload('legacy-1', 'shop', 'legacy', IP.legacy),
        workload('web-1', 'shop', 'web', IP.web),
        workload('bot-1', 'shop', 'bot', IP.bot),
        workload('ops-1', 'ops', 'admin', IP.ops),
        workload('lonely-1', 'shop', 'lonely', IP.lonely),
      ].join('---\n'),
    );
    policy.write(
      'sidecars.yaml',
      [
        calleeSidecar('api'),
        calleeSidecar('files'),
        calleeSidecar('legacy'),
        `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: lonely, namespace: shop }
spec:
  workloadSelector: { labels: { app: lonely } }
  egress:
    - hosts: ["./files.shop.svc", "./legacy.shop.svc"]
`,
      ].join('---\n'),
    );
    policy.write(
      'peer.yaml',
      [peer('api', 'STRICT'), peer('files', 'PERMISSIVE'), peer('legacy', 'DISABLE')].join('---\n'),
    );
    policy.write('authz-api.yaml', API_AUTHZ);
    policy.write('authz-files.yaml', FILES_AUTHZ);
    policy.write('authz-legacy.yaml', LEGACY_AUTHZ);
    policy.write('traffic.yaml', TRAFFIC);
    policy.write(
      'jwt.yaml',
      `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: api-jwt, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  jwtRules:
    - issuer: ${ISSUER}
      jwks: '${jwks}'
      outputClaimToHeaders: [{ header: x-jwt-sub, claim: sub }]
    - issuer: ${ISSUER2}
      audiences: [api]
      jwks: '${jwks}'
`,
    );
    const src = readDirectory(policy.dir);
    const compiled = compileSource(src.value, src.diagnostics);
    assert.ok(compiled.ok, JSON.stringify(compiled.diagnostics, null, 2));
    model = compiled.model!;

    cp = await startPlane({ configDir: policy.dir, stateDir });
    for (const name of ['api', 'files', 'legacy'] as const)
      apps.push(await startApp({ name, host: '127.0.0.1', port: APP[name] }));
    const ids = [
      'shop/api-1',
      'shop/files-1',
      'shop/legacy-1',
      'shop/web-1',
      'shop/bot-1',
      'ops/ops-1',
      'shop/lonely-1',
    ];
    await Promise.all(
      ids.map(async (id) => envoys.set(id, await startSidecar(cp, id, { extraArgs: ['--prometheus-port', '0'] }))),
    );
  });

  after(async () => {
    await Promise.all([...envoys.values()].map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.stop()));
    await cp?.stop();
    policy.cleanup();
  });

  test('every request of the matrix: same status, same deciding rule, same caller identity at the callee', async () => {
    // The mesh is up when web reaches api.
    await waitFor(async () => (await send('web', { to: 'api', path: '/health' }, 0)).status === 200, {
      timeoutMs: 15_000,
      what: 'web -> api /health to succeed',
    });

    const rows: string[] = [];
    const statuses = new Set<number>();
    const decidedBy = new Set<string>();
    let n = 0;
    for (const caller of ['web', 'bot', 'ops', 'lonely'] as const) {
      for (const c of CASES) {
        n++;
        const reply = await send(caller, c, n);
        const e = predict(caller, c);
        const d = e.destinations[0];
        const row = `${caller} ${c.method ?? 'GET'} ${c.to}${c.path}${c.headers ? ` ${JSON.stringify(c.headers)}` : ''}${c.token ? ` +jwt:${c.token}` : ''}: envoy ${reply.status}, explain ${e.status}`;
        rows.push(`${row} (${d?.decidedBy?.name ?? d?.reason ?? e.note})`);
        assert.equal(e.status, reply.status, `${row}\n${formatExplanation(e, true)}\n${reply.body.slice(0, 300)}`);
        statuses.add(reply.status);
        if (d?.decidedBy && e.status !== 401) decidedBy.add(d.decidedBy.name);
        if (reply.status === 403) {
          // The callee's access log names the rule that denied it; explain must name the same one (or none), or
          // say that JWT authentication (a wrong audience) refused it before authorization.
          const callee = envoys.get(`shop/${c.to}-1`)!;
          const line = await waitFor(
            () => accessLog(callee).find((l) => typeof l.path === 'string' && l.path.includes(`n=${n}&`)),
            { timeoutMs: 5000, what: `the access log line of request ${n}` },
          );
          if (d?.stage === 'authentication') assert.match(line.response_code_details, /^jwt_authn_access_denied/, row);
          else
            assert.equal(
              line.response_code_details,
              `rbac_access_denied_matched_policy[${d?.decidedBy?.name ?? 'none'}]`,
              `${row}\n${formatExplanation(e, true)}`,
            );
        }
        if (reply.status === 200 && d) {
          const xfcc = reply.json().headers['x-forwarded-client-cert'] as string | undefined;
          assert.equal(
            xfcc?.includes(
              `URI=spiffe://cluster.local/ns/${caller === 'ops' ? 'ops' : 'shop'}/sa/${caller === 'ops' ? 'admin' : caller}`,
            ) ?? false,
            d.identityPresented,
            `${row}: caller identity at the callee\n${formatExplanation(e, true)}`,
          );
          assert.equal(
            reply.json().path.split('?')[0],
            d.request.path.split('?')[0],
            `${row}: path as the callee sees it`,
          );
        }
      }
    }
    const byStatus = [...statuses]
      .sort()
      .map((st) => `${rows.filter((r) => r.includes(`envoy ${st},`)).length}x ${st}`)
      .join(', ');
    console.log(`# explain agreed with Envoy on all ${rows.length} requests (${byStatus})`);
    // The matrix exercises every kind of outcome and every rule that can decide, so agreement means something.
    assert.deepEqual([...statuses].sort(), [200, 401, 403, 404, 410]);
    const rules = (p: string, k: number) => Array.from({ length: k }, (_, i) => `shop/${p}/rules[${i}]`);
    for (const r of [
      ...rules('api-allow', 7),
      ...rules('api-deny', 3),
      ...rules('files-allow', 1),
      ...rules('legacy-allow', 5).filter((_, i) => i !== 0 && i !== 3),
    ]) {
      assert.ok(decidedBy.has(r), `no request of the matrix was decided by ${r}`);
    }
    assert.ok(!decidedBy.has('shop/legacy-allow/rules[3]'), 'a forged X-Forwarded-For must not satisfy remote.ip');
  });

  test('explain reports the mTLS mode, the transport, the route and the rules that matched', () => {
    const strict = predict('web', { to: 'api', path: '/v2/7' });
    assert.equal(strict.verdict, 'ALLOW');
    assert.equal(strict.routed, true);
    assert.equal(strict.egress, `${IP.web}:15001`);
    assert.match(strict.route!.name, /^shop\/api\/http\[0\] v2$/);
    assert.equal(strict.route!.at, 'traffic.yaml:7:7');
    const d = strict.destinations[0];
    assert.deepEqual(
      [d.mtls, d.transport, d.identityPresented, d.request.path],
      ['STRICT', 'mTLS', true, '/products/7?n=0'],
    );
    assert.deepEqual(d.decidedBy, { name: 'shop/api-allow/rules[0]', at: 'authz-api.yaml:7:7' });
    assert.deepEqual(
      d.matched.map((m) => `${m.action} ${m.name}`),
      ['AUDIT shop/api-audit/rules[0]', 'ALLOW shop/api-allow/rules[0]'],
    );

    const plain = predict('web', { to: 'legacy', path: '/data' }).destinations[0];
    assert.deepEqual(
      [plain.mtls, plain.transport, plain.identityPresented, plain.status],
      ['DISABLE', 'plaintext', false, 403],
    );
    assert.equal(plain.decidedBy, undefined);

    const permissive = predict('bot', { to: 'files', path: '/f' }).destinations[0];
    assert.deepEqual(
      [permissive.mtls, permissive.transport, permissive.identityPresented],
      ['PERMISSIVE', 'mTLS', true],
    );

    const scoped = predict('lonely', { to: 'api', path: '/public' });
    assert.deepEqual([scoped.routed, scoped.status, scoped.destinations.length], [false, 404, 0]);
    assert.match(scoped.note!, /not in shop\/lonely-1's Sidecar egress scope/);
  });

  /** A request from `caller`'s application through its sidecar (an HTTP proxy request), tagged with n. */
  function send(caller: Caller, c: Case, n: number) {
    const headers: Record<string, string> = { host: `${c.to}.shop.svc`, ...c.headers };
    if (c.token) headers.authorization = `Bearer ${tokens.get(c.token)}`;
    const sep = c.path.includes('?') ? '&' : '?';
    return request({
      host: IP[caller],
      port: 15001,
      method: c.method ?? 'GET',
      path: `http://${c.to}.shop.svc${c.path}${sep}n=${n}&`,
      headers,
    });
  }

  function predict(caller: Caller, c: Case): Explanation {
    const id = { web: 'shop/web-1', bot: 'shop/bot-1', ops: 'ops/ops-1', lonely: 'shop/lonely-1' }[caller];
    return explain(model, {
      from: id,
      to: `${c.to}.shop.svc`,
      method: c.method ?? 'GET',
      path: `${c.path}?n=0`,
      headers: { ...c.headers },
      ...(c.token ? { jwtClaims: decodeJwt(tokens.get(c.token)!) as Record<string, unknown> } : {}),
    });
  }

  function accessLog(e: EnvoyProcess): Record<string, any>[] {
    return e
      .logs()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
  }
});
