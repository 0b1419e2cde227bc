/**
 * ServiceEntry resolution and addresses with Istio's meaning in explicit mode. NONE (also Istio's default) passes a
 * connection to the address the application dialled; an explicit-mode application dials its sidecar, so for a host
 * name the sidecar resolves the name itself (the address the application would have dialled). What cannot be
 * honoured that way (a CIDR or VIP, a wildcard, endpoints with NONE) is rejected, saying what to write instead.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileSource } from '../../src/compiler.js';
import { buildCluster } from '../../src/xds/resources/cluster.js';

const caller = `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: caller-1, namespace: ns, labels: { app: caller } }
spec: { address: 127.0.52.50 }
`;

const se = (spec: string) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: ns }
spec:
  location: MESH_EXTERNAL
${spec}`;

function compile(spec: string) {
  return compileSource({ revision: 't', files: [{ path: 's.yaml', text: caller + se(spec) }] });
}

const codes = (spec: string) => compile(spec).diagnostics.map((d) => `${d.code} ${d.location?.line}`);

const HTTP = '  ports: [{ number: 80, name: http, protocol: HTTP }]\n';

describe('ServiceEntry resolution NONE in explicit mode', () => {
  for (const [what, resolution] of [
    ['NONE', '  resolution: NONE\n'],
    ['no resolution (Istio default: NONE)', ''],
  ] as const) {
    test(`${what}, a host name: the sidecar resolves the host itself (a DNS cluster)`, () => {
      const r = compile(`  hosts: [api.example.test]\n${HTTP}${resolution}`);
      assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
      const c = r.proxies.get('ns/caller-1')!.ir.clusters.find((x) => x.key.direction === 'outbound')!;
      assert.equal(c.discovery, 'dns');
      assert.deepEqual(
        c.endpoints.map((e) => `${e.address}:${e.port}`),
        ['api.example.test:80'],
      );
      assert.equal((buildCluster(c) as any).type, 'STRICT_DNS');
    });
  }

  test('NONE with endpoints: rejected as Istio does (write STATIC)', () => {
    assert.deepEqual(
      codes(`  hosts: [api.example.test]\n${HTTP}  resolution: NONE\n  endpoints: [{ address: 127.0.52.51 }]\n`),
      ['CH0204 13'],
    );
  });

  test('NONE with addresses (a VIP or CIDR): the dialled address is never seen, CH0205', () => {
    const r = codes(
      `  hosts: [db.example.test]\n  addresses: [10.0.0.0/24]\n  ports: [{ number: 5432, name: pg, protocol: TCP }]\n`,
    );
    assert.deepEqual(r, ['CH0205 12']);
  });

  test('a wildcard host: CH0205 with NONE and with DNS (DNS cannot resolve a wildcard)', () => {
    assert.deepEqual(codes(`  hosts: ["*.example.test"]\n${HTTP}  resolution: NONE\n`), ['CH0205 11']);
    assert.deepEqual(codes(`  hosts: ["*.example.test"]\n${HTTP}  resolution: DNS\n`), ['CH0205 11']);
  });
});
