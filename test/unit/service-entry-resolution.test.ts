/**
 * ServiceEntry resolution and addresses with Istio's meaning in explicit mode. NONE (also Istio's default) passes a
 * connection to the address the application dialled; an explicit-mode application dials its sidecar, so for a host
 * name the sidecar resolves the name itself (the address the application would have dialled). What cannot be
 * honoured that way (a CIDR or VIP, a wildcard, endpoints with NONE) is rejected, saying what to write instead.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { compileSource } from '../../src/compiler.js';
import { explain } from '../../src/explain/explain.js';
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

  test('DNS or NONE without endpoints: the host is the endpoint, at the targetPort (Istio)', () => {
    for (const resolution of ['DNS', 'NONE']) {
      const ports = '  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8443 }]\n';
      const r = compile(`  hosts: [api.example.test]\n${ports}  resolution: ${resolution}\n`);
      const c = r.proxies.get('ns/caller-1')!.ir.clusters.find((x) => x.key.direction === 'outbound')!;
      assert.deepEqual(
        c.endpoints.map((e) => `${e.address}:${e.port}`),
        ['api.example.test:8443'],
      );
    }
  });

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

  test('a wildcard host: CH0205 with NONE and with DNS (DNS cannot resolve a wildcard; DYNAMIC_DNS can)', () => {
    assert.deepEqual(codes(`  hosts: ["*.example.test"]\n${HTTP}  resolution: NONE\n`), ['CH0205 11']);
    assert.deepEqual(codes(`  hosts: ["*.example.test"]\n${HTTP}  resolution: DNS\n`), ['CH0205 11']);
  });
});

describe('ServiceEntry addresses in explicit mode', () => {
  const withSidecar = (spec: string, egress: string) =>
    compileSource({
      revision: 't',
      files: [
        {
          path: 's.yaml',
          text:
            caller +
            se(spec) +
            `---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: caller, namespace: ns }
spec:
  workloadSelector: { labels: { app: caller } }
  egress:
${egress}`,
        },
      ],
    });
  const DB = '  hosts: [db.example.test]\n  resolution: STATIC\n  endpoints: [{ address: 127.0.52.53 }]\n';

  test('a TCP port: the Sidecar egress listener without bind listens on the address the application dials', () => {
    const r = withSidecar(
      `${DB}  addresses: [127.0.52.52]\n  ports: [{ number: 5432, name: pg, protocol: TCP }]\n`,
      '    - port: { number: 5432, protocol: TCP, name: pg }\n      hosts: ["./db.example.test"]\n',
    );
    assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
    const l = r.proxies.get('ns/caller-1')!.ir.listeners.find((x) => x.tcp)!;
    assert.equal(`${l.address}:${l.port}`, '127.0.52.52:5432');
  });

  test('an HTTP port: the address (and address:port) routes like the host', () => {
    const r = withSidecar(
      `${DB}  addresses: [127.0.52.52]\n${HTTP}`,
      '    - port: { number: 15001, protocol: HTTP, name: http }\n      hosts: ["./*"]\n',
    );
    assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
    const vh = r.proxies.get('ns/caller-1')!.ir.routeTables[0].virtualHosts.find((v) => v.name === 'db.example.test')!;
    assert.deepEqual(vh.domains, ['db.example.test', 'db.example.test:80', '127.0.52.52', '127.0.52.52:80']);
  });

  test('what one listening address cannot stand for: CH0205 (a CIDR, two hosts, two addresses on TCP)', () => {
    const tcp = '  ports: [{ number: 5432, name: pg, protocol: TCP }]\n';
    assert.deepEqual(codes(`${DB}  addresses: [10.0.0.0/24]\n${tcp}`), ['CH0205 14']);
    assert.deepEqual(codes(`${DB}  addresses: [10.0.0.1, 10.0.0.2]\n${tcp}`), ['CH0205 14']);
    const two = DB.replace('[db.example.test]', '[db.example.test, db2.example.test]');
    assert.deepEqual(codes(`${two}  addresses: [10.0.0.1]\n${HTTP}`), ['CH0205 14']);
    assert.deepEqual(codes(`${DB}  addresses: [not-an-ip]\n${HTTP}`), ['CH0204 14']);
  });

  test('one address for two services: CH0402', () => {
    const other = se(`  hosts: [db2.example.test]\n  resolution: DNS\n  addresses: [10.0.0.1]\n${HTTP}`).replace(
      'name: ext,',
      'name: ext2,',
    );
    const r = compileSource({
      revision: 't',
      files: [{ path: 's.yaml', text: caller + se(`${DB}  addresses: [10.0.0.1]\n${HTTP}`) + other }],
    });
    assert.deepEqual(
      r.diagnostics.map((d) => d.code),
      ['CH0402'],
    );
  });
});

describe('ServiceEntry subjectAltNames', () => {
  test('TLS origination verifies the server against them when the DestinationRule names none (Istio)', () => {
    const dr = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ext, namespace: ns }
spec:
  host: api.example.test
  trafficPolicy: { tls: { mode: SIMPLE } }
`;
    const spec = `  hosts: [api.example.test]\n  subjectAltNames: [edge.example.test]\n${HTTP}  resolution: DNS\n`;
    const r = compileSource({ revision: 't', files: [{ path: 's.yaml', text: caller + se(spec) + dr }] });
    assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
    const c = r.proxies.get('ns/caller-1')!.ir.clusters.find((x) => x.originate)!;
    assert.deepEqual(c.originate!.verify!.sans, ['edge.example.test']);
    assert.equal(c.originate!.sni, 'api.example.test');
  });

  test('DestinationRule ISTIO_MUTUAL to endpoints without sidecars accepts them too', () => {
    const spec =
      '  hosts: [legacy.example.test]\n  subjectAltNames: ["spiffe://legacy.example/db"]\n' +
      `${HTTP}  resolution: STATIC\n  endpoints: [{ address: 127.0.52.57, serviceAccount: db }]\n`;
    const dr = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: legacy, namespace: ns }
spec:
  host: legacy.example.test
  trafficPolicy: { tls: { mode: ISTIO_MUTUAL } }
`;
    const r = compileSource({ revision: 't', files: [{ path: 's.yaml', text: caller + se(spec) + dr }] });
    assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
    const c = r.proxies.get('ns/caller-1')!.ir.clusters.find((x) => x.tls)!;
    assert.deepEqual(c.tls!.sans, ['spiffe://cluster.local/ns/ns/sa/db', 'spiffe://legacy.example/db']);
  });

  test('mesh mTLS accepts them besides the identities of the endpoints', () => {
    const spec =
      '  hosts: [db.ns.svc]\n  subjectAltNames: ["spiffe://legacy.example/db"]\n' +
      `${HTTP}  workloadSelector: { labels: { app: db } }\n`;
    const db = `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: db-1, namespace: ns, labels: { app: db } }
spec: { address: 127.0.52.54, serviceAccount: db }
`;
    const text = caller + se(spec).replace('location: MESH_EXTERNAL', 'location: MESH_INTERNAL') + db;
    const r = compileSource({ revision: 't', files: [{ path: 's.yaml', text }] });
    assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
    const c = r.proxies.get('ns/caller-1')!.ir.clusters.find((x) => x.tls)!;
    assert.deepEqual(c.tls!.sans, ['spiffe://cluster.local/ns/ns/sa/db', 'spiffe://legacy.example/db']);
  });
});

describe('ServiceEntry resolution DYNAMIC_DNS (wildcard hosts)', () => {
  test('an HTTP route for the wildcard domain to a dynamic forward proxy cluster, with the filter', () => {
    const r = compile(`  hosts: ["*.example.test"]\n${HTTP}  resolution: DYNAMIC_DNS\n`);
    assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
    const ir = r.proxies.get('ns/caller-1')!.ir;
    const c = ir.clusters.find((x) => x.key.direction === 'outbound')!;
    assert.equal(c.discovery, 'dfp');
    assert.deepEqual(
      ir.routeTables[0].virtualHosts.map((v) => v.domains),
      [['*.example.test', '*.example.test:80']],
    );
    const json = JSON.stringify([...r.proxies.get('ns/caller-1')!.resources.values()].flat().map((x) => x.json));
    assert.match(json, /envoy\.filters\.http\.dynamic_forward_proxy/);
    assert.match(json, /envoy\.clusters\.dynamic_forward_proxy/);
  });

  test("Istio's rules: wildcard hosts only, no endpoints or addresses, HTTP ports (TLS by SNI: CH0205)", () => {
    const res = '  resolution: DYNAMIC_DNS\n';
    assert.deepEqual(codes(`  hosts: [api.example.test]\n${HTTP}${res}`), ['CH0204 11']);
    assert.deepEqual(codes(`  hosts: ["*.example.test"]\n${HTTP}${res}  endpoints: [{ address: 127.0.52.55 }]\n`), [
      'CH0204 14',
    ]);
    assert.deepEqual(codes(`  hosts: ["*.example.test"]\n${HTTP}${res}  addresses: [127.0.52.56]\n`), ['CH0204 14']);
    const tls = '  ports: [{ number: 443, name: tls, protocol: TLS }]\n';
    assert.deepEqual(codes(`  hosts: ["*.example.test"]\n${tls}${res}`), ['CH0205 12']);
    const tcp = '  ports: [{ number: 5432, name: pg, protocol: TCP }]\n';
    assert.deepEqual(codes(`  hosts: ["*.example.test"]\n${tcp}${res}`), ['CH0204 12']);
  });

  test('TLS origination to a DYNAMIC_DNS host: SNI and name from each request (Istio), fixed ones CH0205', () => {
    const dr = (tls: string) => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: wild, namespace: ns }
spec:
  host: "*.example.test"
  trafficPolicy: { tls: ${tls} }
`;
    const run = (tls: string) =>
      compileSource({
        revision: 't',
        files: [
          {
            path: 's.yaml',
            text: caller + se(`  hosts: ["*.example.test"]\n${HTTP}  resolution: DYNAMIC_DNS\n`) + dr(tls),
          },
        ],
      });
    const ok = run('{ mode: SIMPLE }');
    assert.equal(ok.ok, true, JSON.stringify(ok.diagnostics));
    const c = ok.proxies.get('ns/caller-1')!.ir.clusters.find((x) => x.originate)!;
    assert.equal(c.originate!.perRequest, true);
    const json = buildCluster(c) as any;
    assert.equal(json.transport_socket.typed_config.sni, undefined);
    const po = json.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
    assert.deepEqual(po.upstream_http_protocol_options, { auto_sni: true, auto_san_validation: true });
    for (const tls of [
      '{ mode: SIMPLE, sni: a.example.test }',
      '{ mode: SIMPLE, subjectAltNames: [a] }',
      '{ mode: ISTIO_MUTUAL }',
    ]) {
      assert.deepEqual(
        run(tls).diagnostics.map((d) => `${d.code} ${d.location?.line}`),
        ['CH0205 19'],
        tls,
      );
    }
  });
});

describe('explain: external services by name, address or wildcard', () => {
  const model = () => {
    const text = readFileSync('testdata/golden/external/input/policies.yaml', 'utf8');
    return compileSource({ revision: 't', files: [{ path: 'policies.yaml', text }] }).model!;
  };
  const dest = (to: string) => {
    const e = explain(model(), { from: 'ns/caller-1', to });
    return `${e.verdict} ${e.destinations.map((d) => `${d.workload} ${d.transport}`).join(', ')}`;
  };
  test('a name a DYNAMIC_DNS wildcard covers goes to that name, resolved by the sidecar', () => {
    assert.equal(dest('en.wiki.example.test:80'), 'ALLOW en.wiki.example.test:80 (no sidecar) TLS');
  });
  test('a ServiceEntry address stands for its service (TCP and HTTP)', () => {
    assert.equal(dest('127.0.52.101:5432'), 'ALLOW 127.0.52.102:5432 (no sidecar) plaintext');
    assert.equal(dest('127.0.52.103'), 'ALLOW 127.0.52.104:80 (no sidecar) plaintext');
  });
  test('NONE without endpoints: the host itself, at the targetPort, with the originated TLS', () => {
    assert.equal(dest('status.example.test'), 'ALLOW status.example.test:443 (no sidecar) TLS');
  });
});
