/**
 * Gateways without Envoy: every Gateway field's state (supported, or the diagnostic it gets, at its line), the
 * VirtualService `gateways` fields, the cross-resource checks, Istio's host intersection and Envoy's choice of filter
 * chain and virtual host as explain models them, and reading a credential directory.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { compileSource, type CompileOptions } from '../../src/compiler.js';
import type { Diagnostic } from '../../src/diag/diagnostic.js';
import { readCredential, stateOf } from '../../src/credentials/read-credential.js';
import { virtualHostFor } from '../../src/explain/explain-gateway.js';
import { credentialsOf } from '../../src/ir/gateway.js';
import { hostSubsetOf, intersectHosts } from '../../src/model/gateways.js';
import { testCa, testLeaf, writeCredential } from '../support/tls.js';

function compile(files: Record<string, string>, options: CompileOptions = {}) {
  const source = { revision: 'test', files: Object.entries(files).map(([p, text]) => ({ path: p, text })) };
  return compileSource(source, [], undefined, options);
}

function diagnose(files: Record<string, string>, options: CompileOptions = {}): string[] {
  const at = (d: Diagnostic) => (d.location ? `${d.location.file}:${d.location.line}` : '-');
  const warning = (d: Diagnostic) => (d.severity === 'warning' ? ' warning' : '');
  return compile(files, options).diagnostics.map((d) => `${d.code} ${at(d)}${warning(d)}`);
}

const WORKLOADS = `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: gw-1, namespace: edge, labels: { istio: ingressgateway } }
spec: { address: 127.0.35.100, serviceAccount: gw }
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
spec: { address: 127.0.35.101 }
`;

/** A Gateway whose one server (lines 6-) is `server`, indented as a list item of servers. */
const GW = (server: string, extra = '') => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: edge }
spec:
  selector: { istio: ingressgateway }
  servers:
${server}${extra}`;

/** One server: a port line, then `hosts` (unless null) and the extra lines given (each indented under it). */
const srv = (port: string, hosts: string | null = '["*"]', ...extra: string[]) => {
  const hostLine = hosts === null ? [] : [`  hosts: ${hosts}`];
  const lines = [`- port: { ${port} }`, ...hostLine, ...extra.map((l) => `  ${l}`)];
  return lines.map((l) => `    ${l}\n`).join('');
};
const HTTP80 = 'number: 80, name: http, protocol: HTTP';

/** An HTTPS server on 443 for shop.example.com whose `tls` has these lines. */
const HTTPS = (...tls: string[]) =>
  srv('number: 443, name: https, protocol: HTTPS', '["*/shop.example.com"]', 'tls:', ...tls.map((l) => `  ${l}`));
const SIMPLE = ['mode: SIMPLE', 'credentialName: c'];

const VS = (spec: string, name = 'web') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: shop }
spec:
${spec}`;

const ROUTE = '  http:\n    - route: [{ destination: { host: web.shop.svc } }]\n';

/** The workloads and a Gateway with these servers, and more files. */
const withGateway = (servers: string, more: Record<string, string> = {}) => ({
  'w.yaml': WORKLOADS,
  'g.yaml': GW(servers),
  ...more,
});

/** [what, the Gateway's servers, expected diagnostics]. */
const fields: [string, string, string[]][] = [
  ['HTTP server', srv(HTTP80), []],
  [
    'HTTP2 and GRPC servers',
    srv('number: 80, name: h, protocol: HTTP2') + srv('number: 81, name: g, protocol: grpc'),
    [],
  ],
  [
    'port.protocol TCP: routed by tcp routes (none here: a warning)',
    srv('number: 80, name: tcp, protocol: TCP'),
    ['CH0407 g.yaml:7 warning'],
  ],
  ['port.protocol TLS needs tls', srv('number: 80, name: tls, protocol: TLS'), ['CH0203 g.yaml:7']],
  [
    'a TCP server has no tls',
    srv('number: 80, name: tcp, protocol: TCP', '["*"]', 'tls: { httpsRedirect: true }'),
    ['CH0204 g.yaml:9'],
  ],
  ['port.protocol GRPC-WEB: not yet', srv('number: 80, name: w, protocol: GRPC-WEB'), ['CH0205 g.yaml:7']],
  ['port.protocol unknown', srv('number: 80, name: x, protocol: SMTP'), ['CH0204 g.yaml:7']],
  ['port.name is required', srv('number: 80, protocol: HTTP'), ['CH0203 g.yaml:7']],
  ['port.targetPort has no effect', srv(`${HTTP80}, targetPort: 8080`), ['CH0205 g.yaml:7']],
  ['port names are unique', srv(HTTP80) + srv('number: 81, name: http, protocol: HTTP'), ['CH0204 g.yaml:9']],
  ['hosts is required', srv(HTTP80, null), ['CH0203 g.yaml:7']],
  ['hosts: namespace/host forms', srv(HTTP80, '["./a.example.com", "shop/*.example.com", "*/b.x", "c.x"]'), []],
  ['hosts: not namespace/host', srv(HTTP80, '["a/b/c", "sh op/x.com"]'), ['CH0204 g.yaml:8', 'CH0204 g.yaml:8']],
  ['bind an address', srv(HTTP80, '["*"]', 'bind: 127.0.35.102'), []],
  ['bind not an address', srv(HTTP80, '["*"]', 'bind: unix:///tmp/gw.sock'), ['CH0204 g.yaml:9']],
  ['name', srv(HTTP80, '["*"]', 'name: plain'), []],
  ['defaultEndpoint: not yet', srv(HTTP80, '["*"]', 'defaultEndpoint: 127.0.0.1:8080'), ['CH0205 g.yaml:9']],
  ['an unknown server field', srv(HTTP80, '["*"]', 'tlss: {}'), ['CH0201 g.yaml:9']],
  ['tls.httpsRedirect on HTTP', srv(HTTP80, '["*"]', 'tls: { httpsRedirect: true }'), []],
  [
    'plaintext tls may only redirect',
    srv(HTTP80, '["*"]', 'tls: { mode: SIMPLE, credentialName: c }'),
    ['CH0204 g.yaml:9', 'CH0204 g.yaml:9'],
  ],
  ['HTTPS needs tls', srv('number: 443, name: https, protocol: HTTPS'), ['CH0203 g.yaml:7']],
  ['tls.mode SIMPLE with credentialName', HTTPS(...SIMPLE), []],
  [
    'tls.mode MUTUAL with SANs, SPKI and hash',
    HTTPS(
      'mode: MUTUAL',
      'credentialName: c',
      'subjectAltNames: [a.x]',
      'verifyCertificateSpki: ["bXk="]',
      'verifyCertificateHash: ["DF:6F"]',
    ),
    [],
  ],
  ['tls.mode OPTIONAL_MUTUAL', HTTPS('mode: OPTIONAL_MUTUAL', 'credentialName: c'), []],
  ['tls.mode unset is PASSTHROUGH, which takes no certificate', HTTPS('credentialName: c'), ['CH0204 g.yaml:10']],
  ['tls.mode PASSTHROUGH (no tls route: a warning)', HTTPS('mode: PASSTHROUGH'), ['CH0407 g.yaml:7 warning']],
  ['tls.mode AUTO_PASSTHROUGH: rejected', HTTPS('mode: AUTO_PASSTHROUGH'), ['CH0205 g.yaml:10']],
  ['tls.mode ISTIO_MUTUAL', HTTPS('mode: ISTIO_MUTUAL', 'minProtocolVersion: TLSV1_3'), []],
  ['ISTIO_MUTUAL takes no credential', HTTPS('mode: ISTIO_MUTUAL', 'credentialName: c'), ['CH0204 g.yaml:11']],
  [
    'ISTIO_MUTUAL client checks: use an AuthorizationPolicy',
    HTTPS('mode: ISTIO_MUTUAL', 'subjectAltNames: [a]'),
    ['CH0205 g.yaml:11'],
  ],
  [
    'TLS server terminating (tcp routes)',
    srv('number: 443, name: tls, protocol: TLS', '["a.x"]', 'tls:', '  mode: SIMPLE', '  credentialName: c'),
    ['CH0407 g.yaml:7 warning'],
  ],
  ['tls.credentialName is required', HTTPS('mode: SIMPLE'), ['CH0203 g.yaml:10']],
  ['tls.credentialName is a directory name', HTTPS('mode: SIMPLE', 'credentialName: ../etc'), ['CH0204 g.yaml:11']],
  [
    'tls.serverCertificate/privateKey/caCertificates: use credentialName',
    HTTPS(...SIMPLE, 'serverCertificate: /a', 'privateKey: /b', 'caCertificates: /c'),
    ['CH0205 g.yaml:12', 'CH0205 g.yaml:13', 'CH0205 g.yaml:14'],
  ],
  [
    'tls.credentialNames, tlsCertificates, caCrl: not yet',
    HTTPS(...SIMPLE, 'credentialNames: [a]', 'tlsCertificates: []', 'caCrl: /x'),
    ['CH0205 g.yaml:12', 'CH0205 g.yaml:13', 'CH0205 g.yaml:14'],
  ],
  [
    'tls min and max protocol versions',
    HTTPS(...SIMPLE, 'minProtocolVersion: TLSV1_2', 'maxProtocolVersion: TLSV1_3'),
    [],
  ],
  ['tls protocol version unknown', HTTPS(...SIMPLE, 'minProtocolVersion: SSLV3'), ['CH0204 g.yaml:12']],
  [
    'tls max below min',
    HTTPS(...SIMPLE, 'minProtocolVersion: TLSV1_3', 'maxProtocolVersion: TLSV1_2'),
    ['CH0204 g.yaml:13'],
  ],
  ['tls.cipherSuites', HTTPS(...SIMPLE, 'cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]'), []],
  [
    'tls.cipherSuites unknown or repeated',
    HTTPS(...SIMPLE, 'cipherSuites: [NULL-MD5, AES128-SHA, AES128-SHA]'),
    ['CH0204 g.yaml:12', 'CH0204 g.yaml:12'],
  ],
  ['client checks need MUTUAL', HTTPS(...SIMPLE, 'subjectAltNames: [a]'), ['CH0204 g.yaml:12']],
  ['tls.httpsRedirect on HTTPS', HTTPS(...SIMPLE, 'httpsRedirect: true'), ['CH0204 g.yaml:12']],
];

describe('Gateway fields', () => {
  for (const [what, server, expect] of fields) {
    test(what, () => assert.deepEqual(diagnose(withGateway(server)).sort(), expect.sort()));
  }
  test('selector is required and may not be empty', () => {
    const gw = GW(srv(HTTP80)).replace('  selector: { istio: ingressgateway }\n', '  selector: {}\n');
    assert.deepEqual(diagnose({ 'w.yaml': WORKLOADS, 'g.yaml': gw }), ['CH0203 g.yaml:5']);
  });
  test('servers is required', () => {
    const gw =
      'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: { name: g }\n' + 'spec:\n  selector: { a: b }\n';
    assert.deepEqual(diagnose({ 'g.yaml': gw }), ['CH0203 g.yaml:5']);
  });
  test('a selector that matches nothing, in any namespace, is a warning', () => {
    const gw = GW(srv(HTTP80)).replace('istio: ingressgateway', 'istio: nobody');
    assert.deepEqual(diagnose({ 'w.yaml': WORKLOADS, 'g.yaml': gw }), ['CH0303 g.yaml:5 warning']);
  });
});

const PLAIN = srv(HTTP80);

describe('VirtualService gateways and the checks across Gateways', () => {
  test('gateways: name in the namespace, namespace/name, mesh; a gateway-only host need not be a service', () => {
    const vs = VS(`  hosts: [shop.example.com]\n  gateways: [edge/gw]\n${ROUTE}`);
    assert.deepEqual(diagnose(withGateway(PLAIN, { 'v.yaml': vs })), []);
    const both = VS(`  hosts: [web.shop.svc, shop.example.com]\n  gateways: [mesh, edge/gw]\n${ROUTE}`);
    assert.deepEqual(diagnose(withGateway(PLAIN, { 'v.yaml': both })), []);
    const mesh = VS(`  hosts: [shop.example.com]\n  gateways: [mesh]\n${ROUTE}`);
    const sidecarsOnly = diagnose({ 'w.yaml': WORKLOADS, 'v.yaml': mesh });
    assert.deepEqual(sidecarsOnly, ['CH0301 v.yaml:5'], 'the sidecars route services only');
  });
  test('an unknown gateway, or a name that is not one', () => {
    const vs = VS(`  hosts: [shop.example.com]\n  gateways: [edge/nope, gw]\n${ROUTE}`);
    assert.deepEqual(diagnose(withGateway(PLAIN, { 'v.yaml': vs })), ['CH0307 v.yaml:6', 'CH0307 v.yaml:6']);
    const bad = VS(`  hosts: [shop.example.com]\n  gateways: [a.b.c]\n${ROUTE}`);
    assert.deepEqual(diagnose(withGateway(PLAIN, { 'v.yaml': bad })), ['CH0204 v.yaml:6']);
  });
  test("match gateways: outside the VirtualService's own is a warning; unknown is an error", () => {
    const http =
      '  http:\n    - match: [{ uri: { prefix: /a }, gateways: [edge/gw] }, { gateways: [edge/other] }]\n' +
      '      route: [{ destination: { host: web.shop.svc } }]\n';
    const vs = VS(`  hosts: [web.shop.svc]\n${http}`);
    const expected = ['CH0307 v.yaml:7', 'CH0407 v.yaml:7 warning', 'CH0407 v.yaml:7 warning'];
    assert.deepEqual(diagnose(withGateway(PLAIN, { 'v.yaml': vs })).sort(), expected.sort());
  });
  test('a match with gateways is no catch-all: the route after it can still match elsewhere', () => {
    const http =
      '  http:\n    - match: [{ gateways: [edge/gw] }]\n' +
      '      route: [{ destination: { host: web.shop.svc } }]\n' +
      '    - route: [{ destination: { host: web.shop.svc } }]\n';
    const vs = VS(`  hosts: [web.shop.svc, shop.example.com]\n  gateways: [mesh, edge/gw]\n${http}`);
    assert.deepEqual(diagnose(withGateway(PLAIN, { 'v.yaml': vs })), []);
  });
  test('a VirtualService whose hosts no server admits routes nothing there (warning)', () => {
    const server = '    - port: { number: 80, name: http, protocol: HTTP }\n      hosts: ["other/*"]\n';
    const vs = VS(`  hosts: [shop.example.com]\n  gateways: [edge/gw]\n${ROUTE}`);
    assert.deepEqual(diagnose(withGateway(server, { 'v.yaml': vs })), ['CH0407 v.yaml:6 warning']);
  });
  test('two VirtualServices for one host of one route table', () => {
    const a = VS(`  hosts: [shop.example.com]\n  gateways: [edge/gw]\n${ROUTE}`, 'a');
    const b = VS(`  hosts: ["*.example.com", shop.example.com]\n  gateways: [edge/gw]\n${ROUTE}`, 'b');
    assert.deepEqual(diagnose(withGateway(PLAIN, { 'a.yaml': a, 'b.yaml': b })), ['CH0408 b.yaml:5']);
  });
  test('two TLS servers for one name on one port; TLS and plaintext on one port', () => {
    const tls = HTTPS(...SIMPLE);
    assert.deepEqual(diagnose(withGateway(tls + tls.replace('name: https', 'name: https-2'))), ['CH0404 g.yaml:12']);
    const mixed = tls + srv('number: 443, name: http, protocol: HTTP');
    assert.deepEqual(diagnose(withGateway(mixed)), ['CH0404 g.yaml:12']);
  });
  test('a gateway listener on an address:port another workload listens on', () => {
    const server = srv('number: 15001, name: http, protocol: HTTP', '["*"]', 'bind: 127.0.35.101');
    // Reported at the sidecar's own claim: its default egress listener on its loopback address.
    assert.deepEqual(diagnose(withGateway(server)), ['CH0404 w.yaml:14']);
  });
  test('a gateway-only VirtualService never reaches a sidecar; the gateway gets no sidecar listeners', () => {
    const vs = VS(`  hosts: [shop.example.com]\n  gateways: [edge/gw]\n${ROUTE}`);
    const r = compile(withGateway(PLAIN, { 'v.yaml': vs }));
    const web = r.proxies.get('shop/web-1')!.ir;
    assert.ok(!JSON.stringify(web).includes('shop.example.com'));
    const gw = r.proxies.get('edge/gw-1')!.ir;
    assert.deepEqual(
      gw.listeners.map((l) => `${l.direction}|${l.address}:${l.port}`),
      ['gateway|127.0.35.100:80'],
    );
    assert.deepEqual(
      gw.routeTables[0].virtualHosts.map((v) => v.domains),
      [['shop.example.com']],
    );
    assert.deepEqual(credentialsOf(gw), []);
  });
});

describe('credentials as the compiler sees them', () => {
  const files = withGateway(HTTPS('mode: MUTUAL', 'credentialName: shop'));
  test('missing or invalid: an error at the credentialName line', () => {
    assert.deepEqual(diagnose(files, { credentials: () => ({ ok: false, problem: 'gone' }) }), ['CH0308 g.yaml:11']);
  });
  test('MUTUAL without ca.crt', () => {
    const noCa = () => ({ ok: true as const, hasCa: false, warnings: [] });
    assert.deepEqual(diagnose(files, { credentials: noCa }), ['CH0308 g.yaml:11']);
  });
  test('expired: a warning; no credentials directory at all: a warning', () => {
    const expired = () => ({ ok: true as const, hasCa: true, warnings: ['expired'] });
    assert.deepEqual(diagnose(files, { credentials: expired }), ['CH0308 g.yaml:11 warning']);
    const noDirectory = () => ({ ok: false as const, problem: 'no dir', unavailable: true as const });
    assert.deepEqual(diagnose(files, { credentials: noDirectory }), ['CH0308 g.yaml:11 warning']);
  });
  test('the gateway proxy uses exactly the credentials its servers name', () => {
    assert.deepEqual(credentialsOf(compile(files).proxies.get('edge/gw-1')!.ir), ['shop']);
  });
});

describe('reading a credential directory', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chancery-credentials-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = testCa('ca.test');
  const leaf = testLeaf(ca, ['shop.example.com']);
  test('a valid one, with and without ca.crt', () => {
    writeCredential(dir, 'a', leaf);
    const a = readCredential(dir, 'a');
    assert.ok(a.ok);
    assert.deepEqual(a.credential.dnsNames, ['shop.example.com']);
    assert.equal(a.credential.caPem, undefined);
    writeCredential(dir, 'b', leaf, { clientCa: ca });
    const b = readCredential(dir, 'b');
    assert.ok(b.ok && b.credential.caPem === ca.certPem);
    assert.notEqual(b.credential.version, a.credential.version);
  });
  test('missing, garbage, a key of another certificate, a bad ca.crt', () => {
    assert.match((readCredential(dir, 'none') as { problem: string }).problem, /does not exist/);
    writeCredential(dir, 'c', leaf);
    writeFileSync(path.join(dir, 'c', 'tls.crt'), 'not pem');
    assert.match((readCredential(dir, 'c') as { problem: string }).problem, /no PEM certificate/);
    writeCredential(dir, 'd', leaf);
    writeCredential(dir, 'd', testLeaf(ca, ['x.test']), { only: 'key' });
    assert.match((readCredential(dir, 'd') as { problem: string }).problem, /is not the key of/);
    writeCredential(dir, 'e', leaf);
    writeFileSync(path.join(dir, 'e', 'ca.crt'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    assert.match((readCredential(dir, 'e') as { problem: string }).problem, /does not parse/);
  });
  test('an expired certificate is still served, with a warning', () => {
    writeCredential(dir, 'f', leaf);
    const s = stateOf(readCredential(dir, 'f'), Date.now() + 48 * 3_600_000);
    assert.ok(s.ok && s.warnings.length === 1 && /expired/.test(s.warnings[0]));
  });
});

describe("Istio's host matching and Envoy's choice of virtual host", () => {
  test('hostSubsetOf and intersectHosts as Istio (host.Name SubsetOf, host.Names Intersection)', () => {
    assert.ok(hostSubsetOf('a.example.com', '*.example.com'));
    assert.ok(!hostSubsetOf('example.com', '*.example.com'));
    assert.ok(hostSubsetOf('*.a.example.com', '*.example.com'));
    assert.ok(!hostSubsetOf('*.example.com', '*.a.example.com'));
    assert.ok(hostSubsetOf('*', '*') && hostSubsetOf('x', '*') && !hostSubsetOf('*', 'x'));
    assert.deepEqual(intersectHosts(['*'], ['a.com', '*.b.com']), ['a.com', '*.b.com']);
    assert.deepEqual(intersectHosts(['*.x.com'], ['*', 'a.x.com', 'b.other.com']), ['*.x.com', 'a.x.com']);
    assert.deepEqual(intersectHosts(['a.x.com', 'b.x.com'], ['*.x.com']), ['a.x.com', 'b.x.com']);
    assert.deepEqual(intersectHosts(['a.com'], ['b.com']), []);
  });
  test('virtualHostFor: exact, then the longest wildcard suffix, then *', () => {
    const vh = (d: string) => ({ name: d, domains: [d], routes: [] });
    const all = [vh('*'), vh('*.example.com'), vh('*.a.example.com'), vh('x.a.example.com')];
    assert.equal(virtualHostFor(all, 'x.a.example.com')?.name, 'x.a.example.com');
    assert.equal(virtualHostFor(all, 'Y.A.example.com')?.name, '*.a.example.com');
    assert.equal(virtualHostFor(all, 'b.example.com')?.name, '*.example.com');
    assert.equal(virtualHostFor(all, 'example.com')?.name, '*');
  });
});

/** A TLS service behind the gateway (for tls and tcp routes). */
const SECURE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: secure, namespace: shop }
spec:
  hosts: [secure.shop.svc]
  ports: [{ number: 443, name: tls, protocol: TLS }]
  workloadSelector: { labels: { app: web } }
`;
const PASS = srv('number: 443, name: tls, protocol: TLS', '["*"]', 'tls: { mode: PASSTHROUGH }');
const TCP = srv('number: 31400, name: tcp, protocol: TCP');
/** A VirtualService bound to edge/gw with these tls (or tcp) routes, from line 7 on. */
const L4VS = (routes: string, hosts = '[a.example.com, "*.b.example.com"]') =>
  VS(`  hosts: ${hosts}\n  gateways: [edge/gw]\n${routes}`);
const TLS_ROUTE = (match: string, dest = 'secure.shop.svc') =>
  `  tls:\n    - match: [${match}]\n      route: [{ destination: { host: ${dest} } }]\n`;

describe('VirtualService tls and tcp routes on gateways', () => {
  // A route refused at decode routes nothing: the server's "nothing routes it" warning comes with its error.
  const l4: [string, string, string, string[]][] = [
    ['a tls route by SNI to a PASSTHROUGH server', PASS, TLS_ROUTE('{ sniHosts: [a.example.com], port: 443 }'), []],
    ['sniHosts is required', PASS, TLS_ROUTE('{ port: 443 }'), ['CH0203 v.yaml:8', 'CH0407 g.yaml:7 warning']],
    [
      'an SNI host the VirtualService hosts do not cover',
      PASS,
      TLS_ROUTE('{ sniHosts: [c.example.com] }'),
      ['CH0204 v.yaml:8', 'CH0407 g.yaml:7 warning'],
    ],
    ['a wildcard SNI host inside a wildcard host', PASS, TLS_ROUTE('{ sniHosts: ["*.x.b.example.com"] }'), []],
    [
      'tls match sourceLabels on a gateway: rejected (Istio ignores them there)',
      PASS,
      TLS_ROUTE('{ sniHosts: [a.example.com], sourceLabels: { a: b } }'),
      ['CH0205 v.yaml:8'],
    ],
    [
      'tls match destinationSubnets: rejected',
      PASS,
      TLS_ROUTE('{ sniHosts: [a.example.com], destinationSubnets: [10.0.0.0/8] }'),
      ['CH0205 v.yaml:8', 'CH0407 g.yaml:7 warning'],
    ],
    [
      'tls route to an HTTP port',
      PASS,
      TLS_ROUTE('{ sniHosts: [a.example.com] }', 'web.shop.svc'),
      ['CH0304 v.yaml:9'],
    ],
    [
      "a tls route whose port is not the server's: nothing routes it",
      PASS,
      TLS_ROUTE('{ sniHosts: [a.example.com], port: 8443 }'),
      ['CH0407 g.yaml:7 warning', 'CH0407 v.yaml:6 warning'],
    ],
    [
      'two tls routes for one SNI name on one listener',
      PASS,
      TLS_ROUTE('{ sniHosts: [a.example.com] }') +
        '    - match: [{ sniHosts: [a.example.com] }]\n' +
        '      route: [{ destination: { host: secure.shop.svc } }]\n',
      ['CH0404 v.yaml:10'],
    ],
    [
      'a tcp route with gateways and port on a TCP server',
      TCP,
      '  tcp:\n    - match: [{ port: 31400, gateways: [edge/gw] }]\n' +
        '      route: [{ destination: { host: secure.shop.svc } }]\n',
      [],
    ],
    [
      'tcp sourceLabels on a gateway: rejected (Istio ignores them there)',
      TCP,
      '  tcp:\n    - match: [{ port: 31400, sourceLabels: { a: b } }]\n' +
        '      route: [{ destination: { host: secure.shop.svc } }]\n',
      ['CH0205 v.yaml:8'],
    ],
    [
      'a TCP server sharing a plaintext port',
      TCP + srv('number: 31400, name: http, protocol: HTTP'),
      '  tcp:\n    - route: [{ destination: { host: secure.shop.svc } }]\n',
      ['CH0404 g.yaml:7'],
    ],
  ];
  for (const [what, servers, routes, expect] of l4) {
    test(what, () => {
      const files = withGateway(servers, { 's.yaml': SECURE, 'v.yaml': L4VS(routes) });
      assert.deepEqual(diagnose(files).sort(), expect.sort());
    });
  }
  test('tls routes at a sidecar: its TLS egress port gets a chain per SNI set, for the matches that hold', () => {
    const sidecar = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: web, namespace: shop }
spec:
  workloadSelector: { labels: { app: web } }
  egress:
    - port: { number: 15443, protocol: TLS, name: tls }
      hosts: [./secure.shop.svc]
`;
    const routes =
      TLS_ROUTE('{ sniHosts: [secure.shop.svc] }') +
      '    - match: [{ sniHosts: [secure.shop.svc, x.secure.shop.svc], sourceLabels: { app: web } }]\n' +
      '      route: [{ destination: { host: secure.shop.svc } }]\n' +
      '    - match: [{ sniHosts: [y.secure.shop.svc], sourceLabels: { app: other } }]\n' +
      '      route: [{ destination: { host: secure.shop.svc } }]\n';
    const files = { 'w.yaml': WORKLOADS, 's.yaml': SECURE, 'sc.yaml': sidecar };
    const uncovered = compile({ ...files, 'v.yaml': VS('  hosts: [secure.shop.svc]\n' + routes) });
    const codes = uncovered.diagnostics.map((d) => `${d.code} ${d.location?.file}:${d.location?.line}`);
    assert.deepEqual(codes, ['CH0204 v.yaml:9', 'CH0204 v.yaml:11'], 'sniHosts the hosts do not cover');
    const ok = compile({ ...files, 'v.yaml': VS('  hosts: [secure.shop.svc]\n' + routes.replace(/[xy]\./g, '')) });
    assert.deepEqual(ok.diagnostics, []);
    const l = ok.proxies.get('shop/web-1')!.ir.listeners.find((x) => x.port === 15443)!;
    // The second match's names are all taken by the first: it can never be reached (Istio's rule); the third's
    // sourceLabels do not select web.
    assert.deepEqual(
      l.tcp?.sni?.map((c) => `${c.serverNames} ${c.route}`),
      ['secure.shop.svc shop/web/tls[0]'],
    );
    const toHttp = compile({
      ...files,
      'v.yaml': VS('  hosts: [secure.shop.svc]\n' + TLS_ROUTE('{ sniHosts: [secure.shop.svc] }', 'web.shop.svc')),
    });
    assert.deepEqual(
      toHttp.diagnostics.map((d) => d.code),
      ['CH0304'],
      'a tls route to an HTTP port',
    );
    const noRoutes = compile(files)
      .proxies.get('shop/web-1')!
      .ir.listeners.find((x) => x.port === 15443)!;
    assert.equal(noRoutes.tcp?.sni, undefined, 'without tls routes the listener forwards to its one host');
  });
  test('a PASSTHROUGH listener: tls_inspector, a chain per SNI set, tcp_proxy, no transport socket', () => {
    const routes =
      TLS_ROUTE('{ sniHosts: [a.example.com] }') +
      '    - match: [{ sniHosts: ["*.b.example.com"] }]\n      route: [{ destination: { host: secure.shop.svc } }]\n';
    const r = compile(withGateway(PASS, { 's.yaml': SECURE, 'v.yaml': L4VS(routes) }));
    assert.deepEqual(r.diagnostics, []);
    const gw = r.proxies.get('edge/gw-1')!.ir;
    const chains = gw.listeners[0].gateway!.chains;
    assert.deepEqual(
      chains.map((c) => `${c.serverNames} ${c.tcp?.route} ${c.tls ? 'tls' : '-'}`),
      ['a.example.com shop/web/tls[0] -', '*.b.example.com shop/web/tls[1] -'],
    );
    assert.deepEqual(gw.routeTables, [], 'no HTTP route table for an L4 server');
    assert.deepEqual(
      gw.clusters.map((c) => `${c.key.direction} ${c.tls ? 'mTLS' : 'plain'}`),
      ['outbound mTLS'],
    );
  });
});

describe('DestinationRule ISTIO_MUTUAL with sni (the egress gateway subset)', () => {
  const dr = (tls: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: shop }
spec:
  host: web.shop.svc
  trafficPolicy:
    tls: ${tls}
`;
  test('ISTIO_MUTUAL takes sni: the mesh mTLS to the service, with that SNI', () => {
    const r = compile({ 'w.yaml': WORKLOADS, 'd.yaml': dr('{ mode: ISTIO_MUTUAL, sni: edition.cnn.com }') });
    assert.deepEqual(r.diagnostics, []);
    const c = r.proxies.get('shop/web-1')!.ir.clusters.find((x) => x.key.direction === 'outbound')!;
    assert.deepEqual(c.tls, { sans: ['spiffe://cluster.local/ns/shop/sa/default'], sni: 'edition.cnn.com' });
  });
  test('DISABLE takes no sni; ISTIO_MUTUAL takes no certificates', () => {
    assert.deepEqual(diagnose({ 'w.yaml': WORKLOADS, 'd.yaml': dr('{ mode: DISABLE, sni: a.example }') }), [
      'CH0205 d.yaml:7',
    ]);
    const files = { 'w.yaml': WORKLOADS, 'd.yaml': dr('{ mode: ISTIO_MUTUAL, caCertificates: /etc/ca.pem }') };
    assert.deepEqual(diagnose(files), ['CH0205 d.yaml:7']);
  });
});
