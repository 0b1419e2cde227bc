/**
 * chancery diff between two commits of a policy repository created here: new and removed connections, mTLS
 * changes, routing and mesh settings, and the proxies whose configuration changes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { runDiff } from '../src/cli/diff.js';
import { API_WEB_BOT, PolicyDir } from './support/mesh-fixture.js';

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
    assert.match(md.out, /### New allowed connections\n\n- `ns\/bot-1` → `ns\/api-1` port 8080: \* \* \(mTLS PERMISSIVE\) ⚠ plaintext accepted \(PERMISSIVE\)/);
    assert.match(md.out, /### Removed connections\n\n- `ns\/web-1` → `ns\/api-1` port 8080/);
    assert.match(md.out, /`ns\/api-1` port 8080: STRICT → PERMISSIVE/);
    assert.match(md.out, /`api\.ns\.svc`: VirtualService added/);
    assert.match(md.out, /`api\.ns\.svc`: DestinationRule added/);
    assert.match(md.out, /certificateTtlMs: 86400000 → 3600000/);
    assert.match(md.out, /### Proxies whose configuration changes\n\n- `ns\/api-1`\n- `ns\/bot-1`\n- `ns\/web-1`/);
    const json = JSON.parse((await capture(['--config', `${repo.dir}/policies`, 'HEAD~1', 'HEAD', '--format', 'json'])).out);
    assert.equal(json.edgesAdded.length, 1);
    const same = await capture(['--config', `${repo.dir}/policies`, 'HEAD', 'HEAD']);
    assert.match(same.out, /No security-relevant or configuration change/);
  } finally {
    repo.cleanup();
  }
});
