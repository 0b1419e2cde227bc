/**
 * DestinationRule TLS origination with credentialName, below the data plane: what the decoder accepts and rejects,
 * what the compiler says of each credential's state (CH0308 at the credentialName line), which parts of which
 * credentials a proxy is served, the Envoy TLS context, and CA-only credential directories.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { compileSource, type CompileOptions } from '../../src/compiler.js';
import { readCredential, stateOf } from '../../src/credentials/read-credential.js';
import { explain, formatExplanation } from '../../src/explain/explain.js';
import { credentialUsesOf } from '../../src/ir/credentials.js';
import { buildCluster } from '../../src/xds/resources/cluster.js';
import { testCa, testLeaf, writeCredential } from '../support/tls.js';

const files = (tls: string, extra = '') => ({
  'm.yaml': `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: caller-1, namespace: ns, labels: { app: caller } }
spec: { address: 127.0.52.40 }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: ns }
spec:
  hosts: [ext.example.test]
  location: MESH_EXTERNAL
  ports: [{ number: 443, name: https, protocol: HTTP }]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ext, namespace: ns }
spec:
  host: ext.example.test
  trafficPolicy:
    tls: ${tls}
${extra}`,
});

const ok = { ok: true as const, hasCertificate: true, hasCa: true, warnings: [] };

function diagnose(f: Record<string, string>, o: CompileOptions = {}): string[] {
  const src = { revision: 't', files: Object.entries(f).map(([p, text]) => ({ path: p, text })) };
  return compileSource(src, [], undefined, o).diagnostics.map(
    (d) => `${d.code} ${d.location?.file}:${d.location?.line}${d.severity === 'warning' ? ' warning' : ''}`,
  );
}

describe('credentialName: decoding', () => {
  test('accepted for SIMPLE and MUTUAL, with sni, subjectAltNames and insecureSkipVerify', () => {
    assert.deepEqual(
      diagnose(files('{ mode: MUTUAL, credentialName: ext, sni: a.test, subjectAltNames: [a.test] }')),
      [],
    );
    assert.deepEqual(diagnose(files('{ mode: SIMPLE, credentialName: ext, insecureSkipVerify: true }')), []);
  });
  test('with file paths: CH0204 at each file (Istio: one of credentialName or the files)', () => {
    const d = diagnose(files('{ mode: MUTUAL, credentialName: ext, clientCertificate: /c.pem, privateKey: /k.pem }'));
    assert.deepEqual(d, ['CH0204 m.yaml:21', 'CH0204 m.yaml:21']);
  });
  test('on ISTIO_MUTUAL or DISABLE: CH0205; caCrl: CH0205', () => {
    assert.deepEqual(diagnose(files('{ mode: ISTIO_MUTUAL, credentialName: ext }')), ['CH0205 m.yaml:21']);
    assert.deepEqual(diagnose(files('{ mode: SIMPLE, credentialName: ext, caCrl: /crl.pem }')), ['CH0205 m.yaml:21']);
  });
  test('a name that is not a directory name: CH0204', () => {
    assert.deepEqual(diagnose(files('{ mode: SIMPLE, credentialName: ../etc }')), ['CH0204 m.yaml:21']);
  });
});

describe('credentialName: the credential as the compiler sees it', () => {
  const mutual = files('\n      mode: MUTUAL\n      credentialName: ext');
  const simple = files('\n      mode: SIMPLE\n      credentialName: ext');
  const insecure = files('\n      mode: SIMPLE\n      credentialName: ext\n      insecureSkipVerify: true');
  test('missing or invalid: an error at the credentialName line', () => {
    assert.deepEqual(diagnose(mutual, { credentials: () => ({ ok: false, problem: 'gone' }) }), ['CH0308 m.yaml:23']);
  });
  test('MUTUAL needs tls.crt and tls.key; verification needs ca.crt unless insecureSkipVerify', () => {
    const caOnly = () => ({ ...ok, hasCertificate: false });
    const noCa = () => ({ ...ok, hasCa: false });
    assert.deepEqual(diagnose(mutual, { credentials: caOnly }), ['CH0308 m.yaml:23']);
    assert.deepEqual(diagnose(simple, { credentials: caOnly }), []);
    assert.deepEqual(diagnose(simple, { credentials: noCa }), ['CH0308 m.yaml:23']);
    assert.deepEqual(diagnose(insecure, { credentials: noCa }), []);
  });
  test('expired: a warning; no credentials directory: a warning', () => {
    const expired = () => ({ ...ok, warnings: ['expired'] });
    assert.deepEqual(diagnose(simple, { credentials: expired }), ['CH0308 m.yaml:23 warning']);
    const none = () => ({ ok: false as const, problem: 'none', unavailable: true as const });
    assert.deepEqual(diagnose(simple, { credentials: none }), ['CH0308 m.yaml:23 warning']);
  });
  test('a subset or port-level origination is checked too', () => {
    const subset = files(
      '{ mode: DISABLE }',
      '  subsets:\n    - name: v1\n      labels: { v: "1" }\n      trafficPolicy:\n' +
        '        portLevelSettings:\n          - port: { number: 443 }\n' +
        '            tls: { mode: SIMPLE, credentialName: sub }',
    );
    const gone = (n: string) => (n === 'sub' ? { ok: false as const, problem: 'gone' } : ok);
    assert.deepEqual(
      diagnose(subset, { credentials: gone }).filter((d) => d.startsWith('CH0308')),
      ['CH0308 m.yaml:28'],
    );
  });
});

describe('credentialName: what the proxy gets', () => {
  const compile = (tls: string) => {
    const src = { revision: 't', files: Object.entries(files(tls)).map(([p, text]) => ({ path: p, text })) };
    const r = compileSource(src);
    assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
    return r.proxies.get('ns/caller-1')!.ir;
  };
  test('MUTUAL: the certificate and the CA, over SDS', () => {
    const ir = compile('{ mode: MUTUAL, credentialName: ext, sni: a.test }');
    assert.deepEqual(credentialUsesOf(ir), [{ name: 'ext', certificate: true, ca: true }]);
    const c = ir.clusters.find((x) => x.originate)!;
    const tls = (buildCluster(c) as any).transport_socket.typed_config;
    assert.equal(tls.sni, 'a.test');
    assert.deepEqual(
      tls.common_tls_context.tls_certificate_sds_secret_configs.map((x: any) => x.name),
      ['credential://ext'],
    );
    const v = tls.common_tls_context.combined_validation_context;
    assert.equal(v.validation_context_sds_secret_config.name, 'credential://ext-cacert');
    assert.deepEqual(
      v.default_validation_context.match_typed_subject_alt_names.map((m: any) => m.matcher.exact),
      ['a.test', 'a.test'],
    );
  });
  test('SIMPLE: only the CA; SIMPLE with insecureSkipVerify: nothing at all', () => {
    assert.deepEqual(credentialUsesOf(compile('{ mode: SIMPLE, credentialName: ext }')), [
      { name: 'ext', certificate: false, ca: true },
    ]);
    const ir = compile('{ mode: SIMPLE, credentialName: ext, insecureSkipVerify: true }');
    assert.deepEqual(credentialUsesOf(ir), []);
    const tls = (buildCluster(ir.clusters.find((x) => x.originate)!) as any).transport_socket.typed_config;
    assert.deepEqual(tls.common_tls_context, {});
  });
});

describe('credential directories', () => {
  test('ca.crt alone is a CA credential; nothing at all is a problem', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'chancery-cred-'));
    try {
      const ca = testCa('ca.test');
      mkdirSync(path.join(dir, 'only-ca'));
      writeFileSync(path.join(dir, 'only-ca', 'ca.crt'), ca.certPem);
      const r = readCredential(dir, 'only-ca');
      assert.ok(r.ok);
      assert.equal(r.credential.keyPem, undefined);
      assert.deepEqual(stateOf(r, Date.now()), { ok: true, hasCertificate: false, hasCa: true, warnings: [] });
      mkdirSync(path.join(dir, 'empty'));
      assert.equal(readCredential(dir, 'empty').ok, false);
      writeCredential(dir, 'pair', testLeaf(ca, ['x.test']));
      const p = readCredential(dir, 'pair');
      assert.ok(p.ok && stateOf(p, Date.now()).ok);
      assert.deepEqual(stateOf(p, Date.now()), { ok: true, hasCertificate: true, hasCa: false, warnings: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('explain: what the caller sends to an external service', () => {
  const model = (tls: string) => {
    const src = { revision: 't', files: Object.entries(files(tls)).map(([p, text]) => ({ path: p, text })) };
    return compileSource(src).model!;
  };
  test('TLS the sidecar originates, to the host it resolves (DNS, no endpoints): not plaintext, not 503', () => {
    const e = explain(model('{ mode: MUTUAL, credentialName: ext, sni: a.test }'), {
      from: 'ns/caller-1',
      to: 'ext.example.test:443',
    });
    assert.equal(e.verdict, 'ALLOW');
    assert.deepEqual(
      e.destinations.map((d) => [d.workload, d.transport, d.status]),
      [['ext.example.test:443 (no sidecar)', 'TLS', 200]],
    );
    const text = formatExplanation(e, false);
    assert.match(text, /sent over TLS MUTUAL originated by the caller's sidecar/);
    assert.match(text, /client certificate from credential ext/);
    assert.match(text, /server verified with credential ext's ca\.crt/);
  });
  test('insecureSkipVerify says the server is not verified', () => {
    const e = explain(model('{ mode: SIMPLE, credentialName: ext, insecureSkipVerify: true }'), {
      from: 'ns/caller-1',
      to: 'ext.example.test:443',
    });
    assert.match(
      formatExplanation(e, false),
      /TLS SIMPLE originated by the caller's sidecar \(SNI ext\.example\.test, the server is not verified/,
    );
  });
});
