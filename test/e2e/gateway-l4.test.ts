/**
 * Gateway L4 through real Envoy and real TLS: TLS PASSTHROUGH chosen by SNI (Istio's "ingress gateway without TLS
 * termination" task: an HTTPS server in PASSTHROUGH mode and a VirtualService tls route), the client's TLS carried
 * end to end inside the gateway's mTLS to the backend's sidecar; Istio's "TCP traffic shifting" task as documented
 * (a TCP server on 31400, tcp routes shifting v1 -> 80/20, updated live); and a TLS server that terminates with a
 * credential and routes the bytes with a tcp route. Only ServiceEntries and WorkloadEntries (and explicit-mode
 * Sidecars) are added to the documented YAML.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { ControlPlane } from '../../src/app/control-plane.js';
import { compileSource } from '../../src/compiler.js';
import { explain } from '../../src/explain/explain.js';
import { buildGraph } from '../../src/explain/graph.js';
import { readDirectory } from '../../src/source/directory.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { waitFor } from '../support/http.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { freePort } from '../support/ports.js';
import { testCa, testLeaf, writeCredential } from '../support/tls.js';

const IP = {
  gateway: '127.0.51.1',
  nginx: '127.0.51.2',
  v1: '127.0.51.3',
  v2: '127.0.51.4',
  nginxApp: '127.0.51.5',
  v1App: '127.0.51.6',
  v2App: '127.0.51.7',
  denied: '127.0.51.8',
  client: '127.0.51.9',
};
const NS = 'istio-io-tcp-traffic-shifting';
const TCP_ECHO = `tcp-echo.${NS}.svc.cluster.local`;

/** Istio's "Ingress Gateway without TLS Termination" task, as documented. */
const PASSTHROUGH = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway # use istio default ingress gateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    tls:
      mode: PASSTHROUGH
    hosts:
    - nginx.example.com
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: nginx
spec:
  hosts:
  - nginx.example.com
  gateways:
  - mygateway
  tls:
  - match:
    - port: 443
      sniHosts:
      - nginx.example.com
    route:
    - destination:
        host: my-nginx
        port:
          number: 443
`;

/** Istio's "TCP Traffic Shifting" task: the Gateway, the DestinationRule and the first VirtualService (all to v1). */
const TCP_SHIFTING = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: tcp-echo-gateway
  namespace: ${NS}
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 31400
      name: tcp
      protocol: TCP
    hosts:
    - "*"
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: tcp-echo-destination
  namespace: ${NS}
spec:
  host: ${TCP_ECHO}
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
`;

const tcpEchoVs = (split: boolean) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: tcp-echo
  namespace: ${NS}
spec:
  hosts:
  - "*"
  gateways:
  - tcp-echo-gateway
  tcp:
  - match:
    - port: 31400
    route:
    - destination:
        host: ${TCP_ECHO}
        port:
          number: 9000
        subset: v1
${
  split
    ? `      weight: 80
    - destination:
        host: ${TCP_ECHO}
        port:
          number: 9000
        subset: v2
      weight: 20
`
    : ''
}`;

/** A TLS server that terminates with a credential and forwards the bytes by a tcp route (to v2). */
const TLS_TERMINATE = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: tcp-tls-gateway, namespace: ${NS} }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 31401, name: tls, protocol: TLS }
      hosts: [tcp.example.test]
      tls: { mode: SIMPLE, credentialName: tcp-cert }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: tcp-echo-tls, namespace: ${NS} }
spec:
  hosts: [tcp.example.test]
  gateways: [tcp-tls-gateway]
  tcp:
    - match: [{ port: 31401 }]
      route: [{ destination: { host: ${TCP_ECHO}, port: { number: 9000 }, subset: v2 } }]
`;

interface AppPorts {
  nginx: number;
  v1: number;
  v2: number;
}

/** What Kubernetes would provide: the registry, the workloads, explicit-mode Sidecars, Istio's ALLOW default. */
const registry = (p: AppPorts) => `apiVersion: chancery.dev/v1alpha1
kind: Mesh
metadata: { name: mesh }
spec:
  authorization: { default: ALLOW } # Istio's default posture; Chancery's own is DENY
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ingressgateway-1, namespace: istio-system, labels: { istio: ingressgateway } }
spec: { address: ${IP.gateway}, serviceAccount: ingressgateway }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: my-nginx }
spec:
  hosts: [my-nginx]
  ports: [{ number: 443, name: https, protocol: HTTPS }]
  workloadSelector: { labels: { run: my-nginx } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: my-nginx-1, labels: { run: my-nginx } }
spec: { address: ${IP.nginx}, serviceAccount: nginx }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: my-nginx }
spec:
  workloadSelector: { labels: { run: my-nginx } }
  ingress:
    - port: { number: 443, protocol: HTTPS, name: https }
      defaultEndpoint: ${IP.nginxApp}:${p.nginx}
---
# Only the ingress gateway may open connections to nginx (its identity comes with the mesh mTLS).
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: nginx-from-gateway }
spec:
  selector: { matchLabels: { run: my-nginx } }
  rules:
    - from:
        - source: { principals: [cluster.local/ns/istio-system/sa/ingressgateway, cluster.local/ns/default/sa/client] }
---
# A mesh client reaching nginx's TLS through its sidecar's TLS egress port, routed by SNI (a tls route at mesh).
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: client-1, labels: { app: client } }
spec: { address: ${IP.client}, serviceAccount: client }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: client }
spec:
  workloadSelector: { labels: { app: client } }
  egress:
    - port: { number: 15443, protocol: TLS, name: tls }
      bind: ${IP.client}
      hosts: [./my-nginx]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: my-nginx }
spec:
  hosts: [my-nginx]
  tls:
    - match: [{ port: 443, sniHosts: [my-nginx] }]
      route: [{ destination: { host: my-nginx, port: { number: 443 } } }]
---
# The gateway's own L4 authorization: connections from one client address are closed.
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ingress-deny-address, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: DENY
  rules: [{ from: [{ source: { ipBlocks: [${IP.denied}/32] } }] }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: tcp-echo, namespace: ${NS} }
spec:
  hosts: [${TCP_ECHO}]
  ports: [{ number: 9000, name: tcp, protocol: TCP }]
  workloadSelector: { labels: { app: tcp-echo } }
${(['v1', 'v2'] as const)
  .map(
    (v) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: tcp-echo-${v}, namespace: ${NS}, labels: { app: tcp-echo, version: ${v} } }
spec: { address: ${IP[v]}, serviceAccount: tcp-echo }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: tcp-echo-${v}, namespace: ${NS} }
spec:
  workloadSelector: { labels: { app: tcp-echo, version: ${v} } }
  ingress:
    - port: { number: 9000, protocol: TCP, name: tcp }
      defaultEndpoint: ${IP[`${v}App`]}:${p[v]}
`,
  )
  .join('')}`;

/** Sends `data` over a fresh connection (TLS when `servername` is given) and returns what came back before close. */
function exchange(
  port: number,
  data: string,
  o: { servername?: string; ca?: string; host?: string; localAddress?: string; insecure?: boolean } = {},
): Promise<{ got: string; serial?: string; error?: string }> {
  return new Promise((resolve) => {
    const host = o.host ?? IP.gateway;
    const from = o.localAddress ? { localAddress: o.localAddress } : {};
    const s = o.servername
      ? tls.connect({ host, port, servername: o.servername, ca: o.ca, rejectUnauthorized: !o.insecure, ...from })
      : net.connect({ host, port, ...from });
    let got = '';
    let serial: string | undefined;
    let error: string | undefined;
    const timer = setTimeout(() => s.destroy(new Error('no answer and no close within 5 s')), 5000);
    s.on(o.servername ? 'secureConnect' : 'connect', () => {
      if (o.servername) serial = (s as tls.TLSSocket).getPeerCertificate().serialNumber?.toLowerCase();
      s.write(data);
    });
    s.on('data', (c) => (got += c.toString()));
    s.on('error', (e) => (error = e.message));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ got, ...(serial ? { serial } : {}), ...(error ? { error } : {}) });
    });
  });
}

describe('gateway L4 (TLS passthrough, TCP, TLS-terminated TCP) through real Envoy', { timeout: 240_000 }, () => {
  const policy = new PolicyDir();
  const stateDir = `${policy.dir}-state`;
  const credentialsDir = `${policy.dir}-credentials`;
  const ca = testCa('l4-ca.test');
  const nginxCert = testLeaf(ca, ['nginx.example.com']);
  const tcpCert = testLeaf(ca, ['tcp.example.test']);
  const servers: net.Server[] = [];
  const envoys: EnvoyProcess[] = [];
  /** Peers the nginx backend accepted a connection from. */
  const nginxPeers: string[] = [];
  let cp: ControlPlane;

  before(async () => {
    const ports: AppPorts = {
      nginx: await freePort(IP.nginxApp),
      v1: await freePort(IP.v1App),
      v2: await freePort(IP.v2App),
    };
    // The nginx backend terminates its own TLS and answers with a greeting and what it was sent.
    const nginx = tls.createServer({ cert: nginxCert.certPem, key: nginxCert.keyPem }, (s) => {
      nginxPeers.push(s.remoteAddress ?? '');
      s.on('error', () => undefined);
      s.once('data', (c) => s.end(`nginx got ${c.toString()}`));
    });
    servers.push(nginx);
    await new Promise<void>((r) => nginx.listen(ports.nginx, IP.nginxApp, () => r()));
    // tcp-echo as in Istio's sample: it answers each message prefixed with its version's word.
    for (const [v, word] of [
      ['v1', 'one'],
      ['v2', 'two'],
    ] as const) {
      const echo = net.createServer((s) => {
        s.on('error', () => undefined);
        s.once('data', (c) => s.end(`${word} ${c.toString()}`));
      });
      servers.push(echo);
      await new Promise<void>((r) => echo.listen(ports[v], IP[`${v}App`], () => r()));
    }
    writeCredential(credentialsDir, 'tcp-cert', tcpCert);
    policy
      .write('registry.yaml', registry(ports))
      .write('passthrough.yaml', PASSTHROUGH)
      .write('tcp-echo-all-v1.yaml', TCP_SHIFTING + '---\n' + tcpEchoVs(false))
      .write('tls-terminate.yaml', TLS_TERMINATE);
    cp = await startPlane({ configDir: policy.dir, stateDir, credentialsDir });
    assert.equal(cp.current?.result.ok, true, JSON.stringify(cp.revisions.at(-1)?.diagnostics));
    envoys.push(await startSidecar(cp, 'istio-system/ingressgateway-1'));
    for (const id of ['default/my-nginx-1', 'default/client-1', `${NS}/tcp-echo-v1`, `${NS}/tcp-echo-v2`]) {
      envoys.push(await startSidecar(cp, id));
    }
    const through = async () => (await exchange(31400, 'ready')).got === 'one ready';
    await waitFor(through, { timeoutMs: 20_000, what: 'tcp-echo through the gateway' });
  });

  after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    for (const s of servers) s.close();
    await cp?.stop();
    policy.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(credentialsDir, { recursive: true, force: true });
  });

  test("PASSTHROUGH by SNI: the backend's own TLS, end to end, inside mTLS from the gateway", async () => {
    const r = await exchange(443, 'GET /', { servername: 'nginx.example.com', ca: ca.certPem });
    assert.equal(r.error, undefined);
    assert.equal(r.serial, nginxCert.serial, "the client saw nginx's certificate: the gateway did not terminate");
    assert.equal(r.got, 'nginx got GET /');
    assert.deepEqual([...new Set(nginxPeers)], ['127.0.0.1'], 'nginx is reached only through its sidecar');
    // The sidecar is STRICT: the backend's port takes no plain TLS that is not the mesh's mTLS.
    const direct = await exchange(443, 'GET /', { servername: 'nginx.example.com', ca: ca.certPem, host: IP.nginx });
    assert.notEqual(direct.got, 'nginx got GET /');
  });

  test('an SNI no tls route names gets no filter chain: the connection is closed', async () => {
    const before = nginxPeers.length;
    const r = await exchange(443, 'GET /', { servername: 'other.example.com', ca: ca.certPem });
    assert.equal(r.got, '');
    assert.ok(r.error !== undefined || r.serial === undefined, JSON.stringify(r));
    assert.equal(nginxPeers.length, before, 'nothing reached nginx');
  });

  test("a sidecar's TLS egress port routes by SNI with a tls route; another name is closed", async () => {
    // The client names the service (my-nginx); nginx's certificate is for nginx.example.com, so no name check here.
    const via = { host: IP.client, insecure: true };
    const r = await exchange(15443, 'GET /', { servername: 'my-nginx', ...via });
    assert.equal(r.serial, nginxCert.serial, "nginx's own TLS, end to end through both sidecars");
    assert.equal(r.got, 'nginx got GET /');
    const before = nginxPeers.length;
    const other = await exchange(15443, 'GET /', { servername: 'nginx.example.com', ...via });
    assert.equal(other.got, '');
    assert.equal(other.serial, undefined, 'no chain for a name the tls route does not list');
    assert.equal(nginxPeers.length, before);
  });

  test("the gateway's L4 DENY by client address closes passthrough and TCP connections", async () => {
    const before = nginxPeers.length;
    const pass = await exchange(443, 'GET /', {
      servername: 'nginx.example.com',
      ca: ca.certPem,
      localAddress: IP.denied,
    });
    assert.equal(pass.got, '');
    assert.equal(pass.serial, undefined, 'no TLS with nginx: the gateway closed the connection first');
    assert.equal(nginxPeers.length, before, 'nothing reached nginx');
    assert.equal((await exchange(31400, 'hello', { localAddress: IP.denied })).got, '');
    assert.match((await exchange(31400, 'hello')).got, /^(one|two) hello$/, 'another address still gets through');
  });

  test("TCP traffic shifting as Istio's task: all to v1, then 80/20 with no restart", async () => {
    for (let i = 0; i < 10; i++) assert.equal((await exchange(31400, `hello ${i}`)).got, `one hello ${i}`);
    policy.write('tcp-echo-all-v1.yaml', TCP_SHIFTING + '---\n' + tcpEchoVs(true));
    const two = async () => (await exchange(31400, 'hello')).got === 'two hello';
    await waitFor(two, { timeoutMs: 15_000, what: 'v2 to answer after the 80/20 shift' });
    const seen = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const word = (await exchange(31400, 'x')).got.split(' ')[0];
      seen.set(word, (seen.get(word) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), ['one', 'two'], JSON.stringify([...seen]));
    assert.ok(seen.get('one')! > seen.get('two')!, `80/20: ${JSON.stringify([...seen])}`);
  });

  test('a TLS server terminates with its credential and forwards the bytes by a tcp route', async () => {
    const r = await exchange(31401, 'hello', { servername: 'tcp.example.test', ca: ca.certPem });
    assert.equal(r.serial, tcpCert.serial, "the gateway presented the credential's certificate");
    assert.equal(r.got, 'two hello');
  });

  test('explain and graph predict what the gateway does with each connection', async () => {
    const src = readDirectory(policy.dir);
    const model = compileSource(src.value, src.diagnostics).model!;
    const gateway = 'istio-system/ingressgateway-1';
    const pass = { servername: 'nginx.example.com', ca: ca.certPem };
    const cases: { to: string; sourceIp?: string; real: () => ReturnType<typeof exchange>; through: RegExp }[] = [
      { to: 'nginx.example.com:443', real: () => exchange(443, 'GET /', pass), through: /^nginx got/ },
      {
        to: 'other.example.com:443',
        real: () => exchange(443, 'GET /', { ...pass, servername: 'other.example.com' }),
        through: /^nginx got/,
      },
      {
        to: 'nginx.example.com:443',
        sourceIp: IP.denied,
        real: () => exchange(443, 'GET /', { ...pass, localAddress: IP.denied }),
        through: /^nginx got/,
      },
      { to: 'tcp-echo:31400', real: () => exchange(31400, 'x'), through: /^(one|two) x$/ },
      {
        to: 'tcp-echo:31400',
        sourceIp: IP.denied,
        real: () => exchange(31400, 'x', { localAddress: IP.denied }),
        through: /^(one|two) x$/,
      },
      {
        to: 'tcp.example.test:31401',
        real: () => exchange(31401, 'x', { servername: 'tcp.example.test', ca: ca.certPem }),
        through: /^two x$/,
      },
    ];
    for (const c of cases) {
      const e = explain(model, { from: gateway, to: c.to, sourceIp: c.sourceIp ?? '127.0.0.1' });
      const r = await c.real();
      const from = c.sourceIp ?? 'the client';
      const what = `${c.to} from ${from}: explain ${e.verdict}, Envoy answered ${JSON.stringify(r)}`;
      assert.equal(e.verdict === 'ALLOW', c.through.test(r.got), what);
    }
    // After the 80/20 shift: the weighted destinations, over the gateway's mTLS, each admitting it.
    const tcp = explain(model, { from: gateway, to: 'tcp-echo:31400' });
    assert.deepEqual(
      tcp.destinations.map((d) => `${d.workload} ${d.share} ${d.transport} ${d.decision}`),
      [`${NS}/tcp-echo-v1 80 mTLS ALLOW`, `${NS}/tcp-echo-v2 20 mTLS ALLOW`],
    );
    const nginx = explain(model, { from: gateway, to: 'nginx.example.com:443' });
    assert.equal(nginx.destinations[0].decidedBy?.name, 'default/nginx-from-gateway/rules[0]');
    const edges = buildGraph(model).edges.map((x) => `${x.from}->${x.to}:${x.port} ${x.service}`);
    for (const edge of [
      `outside->${gateway}:443 nginx.example.com`,
      `outside->${gateway}:31400 *`,
      `outside->${gateway}:31401 tcp.example.test`,
      `${gateway}->default/my-nginx-1:${443} my-nginx`,
      `${gateway}->${NS}/tcp-echo-v1:9000 ${TCP_ECHO}`,
      `${gateway}->${NS}/tcp-echo-v2:9000 ${TCP_ECHO}`,
    ])
      assert.ok(edges.includes(edge), `${edge} in\n${edges.join('\n')}`);
  });
});
