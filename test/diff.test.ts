/**
 * chancery diff between two commits of a policy repository created here: new and removed connections, mTLS
 * changes, routing (gateway-only VirtualServices too), gateway servers and their credentials, mesh settings, and the
 * proxies whose configuration changes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { runDiff } from '../src/cli/diff.js';
import { compileSource } from '../src/compiler.js';
import { diffRevisions, formatDiffMarkdown } from '../src/explain/diff.js';
import { API_WEB_BOT, PolicyDir } from './support/mesh-fixture.js';
import { L4_POLICIES, l4Mesh } from './support/gateway-l4-fixture.js';

const base = API_WEB_BOT;

const allow = (principals: string[]) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: api, namespace: ns }
spec:
  selector: { matchLabels: { app: api } }
  rules: [{ from: [{ source: { principals: ${JSON.stringify(principals)} } }] }]
`;

async function capture(argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    return { code: await runDiff(argv), out: lines.join('\n') };
  } finally {
    console.log = orig;
  }
}

test('diff between two commits reports what a reviewer needs', async () => {
  const repo = new PolicyDir();
  const git = (...a: string[]) => execFileSync('git', a, { cwd: repo.dir, encoding: 'utf8' }).trim();
  git('init', '-q', '-b', 'main');
  git('config', 'user.email', 't@example.com');
  git('config', 'user.name', 't');
  mkdirSync(`${repo.dir}/policies`);
  writeFileSync(`${repo.dir}/policies/mesh.yaml`, base);
  writeFileSync(`${repo.dir}/policies/authz.yaml`, allow(['cluster.local/ns/ns/sa/web']));
  git('add', '.');
  git('commit', '-q', '-m', 'one');
  writeFileSync(`${repo.dir}/policies/authz.yaml`, allow(['cluster.local/ns/ns/sa/bot']));
  writeFileSync(
    `${repo.dir}/policies/more.yaml`,
    `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: api, namespace: ns }
spec:
  selector: { matchLabels: { app: api } }
  mtls: { mode: PERMISSIVE }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: ns }
spec:
  hosts: [api.ns.svc]
  http: [{ route: [{ destination: { host: api.ns.svc } }], timeout: 2s }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: ns }
spec:
  host: api.ns.svc
  trafficPolicy: { loadBalancer: { simple: RANDOM } }
---
apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec:
  certificates: { ttl: 1h }
`,
  );
  writeFileSync(`${repo.dir}/policies/uncommitted.yaml`, 'this: is not committed\n');
  git('add', 'policies/authz.yaml', 'policies/more.yaml');
  git('commit', '-q', '-m', 'two');
  try {
    const md = await capture(['--config', `${repo.dir}/policies`, 'HEAD~1', 'HEAD']);
    assert.equal(md.code, 0, md.out);
    assert.match(
      md.out,
      new RegExp(
        '### New allowed connections\n\n- `ns/bot-1` → `ns/api-1` port 8080: \\* \\* \\(mTLS PERMISSIVE\\) ' +
          '⚠ plaintext accepted \\(PERMISSIVE\\)',
      ),
    );
    assert.match(md.out, /### Removed connections\n\n- `ns\/web-1` → `ns\/api-1` port 8080/);
    assert.match(md.out, /`ns\/api-1` port 8080: STRICT → PERMISSIVE/);
    assert.match(md.out, /`api\.ns\.svc`: VirtualService added/);
    assert.match(md.out, /`api\.ns\.svc`: DestinationRule added/);
    assert.match(md.out, /certificateTtlMs: 86400000 → 3600000/);
    assert.match(md.out, /### Proxies whose configuration changes\n\n- `ns\/api-1`\n- `ns\/bot-1`\n- `ns\/web-1`/);
    const json = JSON.parse(
      (await capture(['--config', `${repo.dir}/policies`, 'HEAD~1', 'HEAD', '--format', 'json'])).out,
    );
    assert.equal(json.edgesAdded.length, 1);
    const same = await capture(['--config', `${repo.dir}/policies`, 'HEAD', 'HEAD']);
    assert.match(same.out, /No security-relevant or configuration change/);
  } finally {
    repo.cleanup();
  }
});

/** A gateway in front of web.shop.svc: its Gateway (credential `cred`) and a VirtualService bound only to it. */
const edge = (o: { credential: string; timeout: string; port?: number }) => ({
  'mesh.yaml': `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: gw-1, namespace: edge, labels: { istio: ingressgateway } }
spec: { address: 127.0.52.60, serviceAccount: gw }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: shop }
spec:
  hosts: [web.shop.svc]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: web } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-1, namespace: shop, labels: { app: web } }
spec: { address: 127.0.52.61 }
---
apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec: { authorization: { default: ALLOW } }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: edge }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: ${o.port ?? 443}, name: https, protocol: HTTPS }
      hosts: ["*/shop.example.com"]
      tls: { mode: SIMPLE, credentialName: ${o.credential} }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: shop }
spec:
  hosts: [shop.example.com]
  gateways: [edge/gw]
  http: [{ route: [{ destination: { host: web.shop.svc } }], timeout: ${o.timeout} }]
`,
});

test('diff reports gateway-only VirtualServices and gateway servers, credentials included', () => {
  const compile = (files: Record<string, string>, revision: string) => {
    const r = compileSource({ revision, files: Object.entries(files).map(([p, text]) => ({ path: p, text })) });
    assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
    return r;
  };
  const a = compile(edge({ credential: 'shop-cert', timeout: '2s' }), 'a');
  const same = diffRevisions(a, compile(edge({ credential: 'shop-cert', timeout: '2s' }), 'b'));
  assert.deepEqual([same.routing, same.gateways], [[], []]);
  const d = diffRevisions(a, compile(edge({ credential: 'shop-cert-2', timeout: '5s' }), 'b'));
  assert.deepEqual(d.routing, [
    { host: 'shop.example.com', kind: 'VirtualService', change: 'changed', gateway: 'edge/gw' },
  ]);
  assert.deepEqual(d.gateways, [
    {
      gateway: 'edge/gw',
      server: 'port 443 (https)',
      change: 'changed',
      details: ['credential shop-cert → shop-cert-2'],
    },
  ]);
  const md = formatDiffMarkdown(d);
  assert.match(md, /### Routing\n\n- `shop\.example\.com` at gateway `edge\/gw`: VirtualService changed/);
  assert.match(md, /### Gateways\n\n- `edge\/gw` port 443 \(https\): changed: credential shop-cert → shop-cert-2/);
  const moved = diffRevisions(a, compile(edge({ credential: 'shop-cert', timeout: '2s', port: 8443 }), 'c'));
  assert.deepEqual(
    moved.gateways.map((g) => `${g.server} ${g.change}`),
    ['port 443 (https) removed', 'port 8443 (https) added'],
  );
  assert.ok(moved.proxies.changed.includes('edge/gw-1'));
});

test('diff tells apart edges from outside through one gateway port by their SNI chains, and shows the names', () => {
  const compiled = (files: Record<string, string>) =>
    compileSource({ revision: 'r', files: Object.entries(files).map(([p, text]) => ({ path: p, text })) });
  const noDeny = L4_POLICIES.replace(
    /---\napiVersion: security.istio.io\/v1\nkind: AuthorizationPolicy\nmetadata: \{ name: no-b[^]*?---\n/,
    '---\n',
  );
  assert.notEqual(noDeny, L4_POLICIES);
  const d = diffRevisions(compiled(l4Mesh()), compiled(l4Mesh(noDeny)));
  const changed = d.edgesChanged.map((c) => `${c.after.to}:${c.after.port} ${c.after.service}`).sort();
  assert.deepEqual(changed, [
    'istio-system/ingress-1:8443 *.c.example.com',
    'istio-system/ingress-1:8443 a.example.com,b.example.com',
  ]);
  assert.match(
    formatDiffMarkdown(d),
    /`outside` → `istio-system\/ingress-1` port 8443 \(a\.example\.com,b\.example\.com\)/,
  );
});
