/**
 * Protocol scenarios against the real gRPC server, for Delta and SotW: ordering, ACK/NACK, stale nonces,
 * subscription changes, reconnects, refusals. A test client plays Envoy's part on the wire.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ControlPlane } from '../src/app/control-plane.js';
import { silentLogger } from '../src/app/logger.js';
import { PolicyDir, docs, serviceEntry, sidecar, workloadEntry } from './support/mesh-fixture.js';
import { T, XdsTestClient, type Decoded } from './support/xds-client.js';

const NODE = { id: 'shop/a-1', cluster: 'shop' };

function baseMesh(p: PolicyDir, extra = ''): void {
  p.write(
    'mesh.yaml',
    docs(
      serviceEntry('a', 'shop'),
      serviceEntry('b', 'shop'),
      workloadEntry('a-1', 'shop', 'a', '127.0.1.1'),
      workloadEntry('b-1', 'shop', 'b', '127.0.1.2'),
      sidecar('a', 'shop', { selector: { app: 'a' }, appEndpoint: '127.0.0.1:9001', egressBind: '127.0.1.1' }),
      sidecar('b', 'shop', { selector: { app: 'b' }, appEndpoint: '127.0.0.1:9002', egressBind: '127.0.1.2' }),
    ) + extra,
  );
}

async function startPlane(p: PolicyDir, maxNewStreamsPerSecond = 1000): Promise<ControlPlane> {
  const cp = new ControlPlane(
    {
      configDir: p.dir,
      xdsAddress: '127.0.0.1:0',
      xdsPlaintextAddress: '127.0.0.1:0',
      stateDir: `${p.dir}/../state-${Math.random().toString(36).slice(2)}`,
      debounceQuietMs: 10,
      debounceMaxMs: 50,
      maxNewStreamsPerSecond,
      watch: false,
    },
    silentLogger,
  );
  await cp.start();
  return cp;
}

/** A test client on the plaintext port, authenticated as `node` (a-1 by default). */
async function client(cp: ControlPlane, variant: 'sotw' | 'delta', node = NODE.id): Promise<XdsTestClient> {
  return new XdsTestClient(cp.xdsPlaintextPort, variant, await cp.issueToken(node));
}

const names = (d: Decoded): string[] => d.resources.map((r) => r.name).sort();

for (const variant of ['delta', 'sotw'] as const) {
  describe(`ADS ${variant}`, () => {
    let p: PolicyDir;
    let cp: ControlPlane;
    before(async () => {
      p = new PolicyDir();
      baseMesh(p);
      cp = await startPlane(p);
    });
    after(async () => {
      await cp.stop();
      p.cleanup();
    });

    function subscribe(c: XdsTestClient, type: string, names: string[], first = false): void {
      if (variant === 'sotw') c.send({ ...(first ? { node: NODE } : {}), type_url: type, resource_names: names });
      else c.send({ ...(first ? { node: NODE } : {}), type_url: type, resource_names_subscribe: names });
    }
    function ack(c: XdsTestClient, d: Decoded, names: string[] = []): void {
      if (variant === 'sotw') c.send({ type_url: d.typeUrl, version_info: d.version, response_nonce: d.nonce, resource_names: names });
      else c.send({ type_url: d.typeUrl, response_nonce: d.nonce });
    }
    function nack(c: XdsTestClient, d: Decoded, message: string, names: string[] = []): void {
      const error_detail = { code: 3, message };
      if (variant === 'sotw') c.send({ type_url: d.typeUrl, version_info: '', response_nonce: d.nonce, resource_names: names, error_detail });
      else c.send({ type_url: d.typeUrl, response_nonce: d.nonce, error_detail });
    }

    test('CDS before LDS: a later type waits for the ACK of the earlier one', async () => {
      const c = await client(cp, variant);
      try {
        subscribe(c, T.CDS, [], true);
        subscribe(c, T.LDS, []);
        const first = await c.next();
        assert.equal(first.typeUrl, T.CDS);
        assert.deepEqual(names(first), ['inbound|8080||', 'outbound|80||a.shop.svc', 'outbound|80||b.shop.svc']);
        assert.ok(await c.quiet(300), 'nothing else is sent before the CDS ACK');
        ack(c, first);
        const second = await c.next();
        assert.equal(second.typeUrl, T.LDS);
        assert.deepEqual(names(second), ['inbound|127.0.1.1:8080', 'outbound|127.0.1.1:15001']);
      } finally {
        c.close();
      }
    });

    test('a stale nonce is ignored', async () => {
      const c = await client(cp, variant);
      try {
        subscribe(c, T.CDS, [], true);
        const d = await c.next();
        const before = cp.ads.counters.staleRequests;
        if (variant === 'sotw') c.send({ type_url: T.CDS, version_info: 'x', response_nonce: 'not-a-nonce', resource_names: [] });
        else c.send({ type_url: T.CDS, response_nonce: 'not-a-nonce' });
        assert.ok(await c.quiet(300));
        assert.equal(cp.ads.counters.staleRequests, before + 1);
        // The real ACK still counts.
        ack(c, d);
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(cp.ads.registry.get(NODE.id)?.types.CDS.acked?.nonce, d.nonce);
      } finally {
        c.close();
      }
    });

    test('a NACK is recorded and the rejected version is never re-sent; new content is', async () => {
      const c = await client(cp, variant);
      try {
        subscribe(c, T.CDS, [], true);
        const d = await c.next();
        nack(c, d, 'Proto constraint validation failed (test)');
        assert.ok(await c.quiet(400), 'rejected content is not re-sent');
        const st = cp.ads.registry.get(NODE.id)!;
        assert.equal(st.types.CDS.lastNack?.message, 'Proto constraint validation failed (test)');
        assert.ok(st.types.CDS.lastNack!.resources.some((r) => r.name === 'outbound|80||b.shop.svc' && r.origins[0].file === 'mesh.yaml'));
        // A new revision (a third service) is sent.
        baseMesh(p, '---\n' + serviceEntry('c', 'shop'));
        try {
          await cp.reload();
          const again = await c.next();
          assert.equal(again.typeUrl, T.CDS);
          assert.ok(names(again).includes('outbound|80||c.shop.svc'));
        } finally {
          baseMesh(p);
          await cp.reload();
        }
      } finally {
        c.close();
      }
    });

    test('EDS by name; a changed subscription is answered', async () => {
      const c = await client(cp, variant);
      try {
        subscribe(c, T.EDS, ['outbound|80||a.shop.svc'], true);
        const d1 = await c.next();
        assert.deepEqual(names(d1), ['outbound|80||a.shop.svc']);
        if (variant === 'sotw') {
          // Same nonce as the latest response, different names: a subscription change, not a plain ACK.
          c.send({ type_url: T.EDS, version_info: d1.version, response_nonce: d1.nonce, resource_names: ['outbound|80||a.shop.svc', 'outbound|80||b.shop.svc'] });
          const d2 = await c.next();
          assert.deepEqual(names(d2), ['outbound|80||a.shop.svc', 'outbound|80||b.shop.svc']);
        } else {
          c.send({ type_url: T.EDS, response_nonce: d1.nonce, resource_names_subscribe: ['outbound|80||b.shop.svc'] });
          const d2 = await c.next();
          assert.deepEqual(names(d2), ['outbound|80||b.shop.svc'], 'delta sends only the newly subscribed resource');
        }
      } finally {
        c.close();
      }
    });

    test('an unchanged revision sends nothing; only proxies whose config changed get a push', async () => {
      const c = await client(cp, variant);
      try {
        subscribe(c, T.CDS, [], true);
        ack(c, await c.next());
        await cp.reload(); // same files: no-op
        assert.ok(await c.quiet(300));
        // Change only b's app endpoint: a-1's snapshot is unchanged.
        p.write('mesh.yaml', (await import('node:fs')).readFileSync(`${p.dir}/mesh.yaml`, 'utf8').replace('127.0.0.1:9002', '127.0.0.1:9012'));
        try {
          await cp.reload();
          const changed = cp.ads.snapshots.ids();
          assert.ok(changed.includes('shop/b-1'));
          assert.ok(await c.quiet(300), 'a-1 receives nothing for a change that does not concern it');
        } finally {
          baseMesh(p);
          await cp.reload();
        }
      } finally {
        c.close();
      }
    });

    test('make before break: a removed cluster goes after the listener update', async () => {
      const c = await client(cp, variant);
      try {
        subscribe(c, T.CDS, [], true);
        subscribe(c, T.LDS, []);
        ack(c, await c.next()); // CDS
        const lds = await c.next();
        ack(c, lds);
        subscribe(c, T.RDS, ['outbound|15001']);
        const rds = await c.next();
        assert.equal(rds.typeUrl, T.RDS);
        ack(c, rds, ['outbound|15001']);
        // Scope a-1 to service a only: cluster b disappears and the route table changes.
        baseMesh(p);
        p.write('scope.yaml', '');
        const text = (await import('node:fs')).readFileSync(`${p.dir}/mesh.yaml`, 'utf8').replace('hosts: ["./*"]', 'hosts: ["./a.shop.svc"]');
        p.write('mesh.yaml', text);
        try {
          await cp.reload();
          const seen: Decoded[] = [];
          for (;;) {
            let d: Decoded;
            try {
              d = await c.next(500);
            } catch {
              break;
            }
            seen.push(d);
            ack(c, d, d.typeUrl === T.RDS ? ['outbound|15001'] : []);
          }
          const rdsIdx = seen.findIndex((d) => d.typeUrl === T.RDS);
          const removal = seen.findIndex(
            (d) => d.typeUrl === T.CDS && (variant === 'delta' ? d.removed.includes('outbound|80||b.shop.svc') : !names(d).includes('outbound|80||b.shop.svc')),
          );
          assert.ok(rdsIdx >= 0, 'route table updated');
          assert.ok(removal > rdsIdx, `cluster removed after the routes changed (order: ${seen.map((d) => d.typeUrl.split('.').pop()).join(',')})`);
        } finally {
          baseMesh(p);
          p.remove('scope.yaml');
          await cp.reload();
        }
      } finally {
        c.close();
      }
    });

    test('a cluster update: its endpoints again, and new secrets, before the CDS ACK Envoy holds back', async () => {
      const c = await client(cp, variant);
      const eds = ['outbound|80||b.shop.svc'];
      try {
        subscribe(c, T.CDS, [], true);
        ack(c, await c.next());
        subscribe(c, T.EDS, eds);
        const first = await c.next();
        assert.equal(first.typeUrl, T.EDS);
        ack(c, first, eds);
        // A cluster-level change of b: Envoy warms the updated cluster and ACKs CDS only once it has warmed.
        const dr =
          'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: b, namespace: shop }\n' +
          'spec: { host: b.shop.svc, trafficPolicy: { loadBalancer: { simple: RANDOM } } }\n';
        p.write('dr.yaml', dr);
        try {
          await cp.reload();
          const cds = await c.next();
          assert.equal(cds.typeUrl, T.CDS);
          const again = await c.next();
          assert.equal(again.typeUrl, T.EDS, 'the endpoints of the updated cluster, unchanged, without waiting');
          assert.deepEqual(names(again), eds);
          subscribe(c, T.SDS, ['default', 'ROOTCA']);
          const sds = await c.next();
          assert.equal(sds.typeUrl, T.SDS, 'secrets the warming cluster needs, still before the CDS ACK');
          ack(c, again, eds);
          ack(c, sds, ['default', 'ROOTCA']);
          assert.ok(await c.quiet(300), 'nothing else before the CDS ACK (no listeners, no removals)');
          ack(c, cds);
        } finally {
          p.remove('dr.yaml');
          await cp.reload();
        }
      } finally {
        c.close();
      }
    });

    test('unknown type URL, missing node and unknown workload are refused with clear errors', async () => {
      const a = await client(cp, variant);
      subscribe(a, 'type.googleapis.com/envoy.config.core.v3.Nope', [], true);
      const sa = await a.ended();
      assert.equal(sa.code, grpc.status.INVALID_ARGUMENT);
      assert.match(sa.details, /unsupported type_url/);

      const b = await client(cp, variant);
      subscribe(b, T.CDS, []); // no node
      const sb = await b.ended();
      assert.equal(sb.code, grpc.status.INVALID_ARGUMENT);
      assert.match(sb.details, /node\.id/);

      const c = await client(cp, variant, 'shop/ghost');
      c.send({ node: { id: 'shop/ghost' }, type_url: T.CDS });
      const sc = await c.ended();
      assert.equal(sc.code, grpc.status.NOT_FOUND);

      const d = await client(cp, variant);
      d.sendRaw(Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01]));
      const sd = await d.ended();
      assert.equal(sd.code, grpc.status.INVALID_ARGUMENT);
      assert.match(sd.details, /malformed/);
    });
  });
}

describe('ADS delta reconnect', () => {
  test('initial_resource_versions: an unchanged proxy receives nothing; a changed resource is sent alone', async () => {
    const p = new PolicyDir();
    baseMesh(p);
    const cp = await startPlane(p);
    try {
      const c1 = await client(cp, 'delta');
      c1.send({ node: NODE, type_url: T.CDS });
      const d = await c1.next();
      c1.send({ type_url: T.CDS, response_nonce: d.nonce });
      c1.close();
      const versions = Object.fromEntries(d.resources.map((r) => [r.name, r.version!]));
      const c2 = await client(cp, 'delta');
      c2.send({ node: NODE, type_url: T.CDS, initial_resource_versions: versions });
      assert.ok(await c2.quiet(400), 'nothing is sent to a proxy that already has everything');
      c2.close();
      const c3 = await client(cp, 'delta');
      c3.send({ node: NODE, type_url: T.CDS, initial_resource_versions: { ...versions, 'outbound|80||a.shop.svc': 'old' } });
      const d3 = await c3.next();
      assert.deepEqual(d3.resources.map((r) => r.name), ['outbound|80||a.shop.svc']);
      c3.close();
    } finally {
      await cp.stop();
      p.cleanup();
    }
  });

  test('unsubscribing removes interest: later changes to that resource are not sent', async () => {
    const p = new PolicyDir();
    baseMesh(p);
    const cp = await startPlane(p);
    const c = await client(cp, 'delta');
    try {
      c.send({ node: NODE, type_url: T.EDS, resource_names_subscribe: ['outbound|80||a.shop.svc', 'outbound|80||b.shop.svc'] });
      const d = await c.next();
      c.send({ type_url: T.EDS, response_nonce: d.nonce, resource_names_unsubscribe: ['outbound|80||b.shop.svc'] });
      assert.ok(await c.quiet(200));
      // Move b's endpoint: a-1 no longer cares.
      p.write('mesh.yaml', (await import('node:fs')).readFileSync(`${p.dir}/mesh.yaml`, 'utf8').replace('address: 127.0.1.2', 'address: 127.0.1.3').replace('bind: 127.0.1.2', 'bind: 127.0.1.3'));
      await cp.reload();
      assert.ok(await c.quiet(400), 'no push for an unsubscribed resource');
    } finally {
      c.close();
      await cp.stop();
      p.cleanup();
    }
  });
});

describe('ADS authentication', () => {
  test('no token, a forged or expired token, or another workload\'s token: refused, nothing sent', async () => {
    const p = new PolicyDir();
    baseMesh(p);
    const cp = await startPlane(p);
    try {
      const cases: [string, string | undefined, number][] = [
        ['no token', undefined, grpc.status.UNAUTHENTICATED],
        // The signature's first character: the last one carries unused padding bits, and changing only those
        // leaves the signature valid (a flaky test once).
        ['forged token', (await cp.issueToken(NODE.id)).replace(/\.([^.])([^.]*)$/, (_m, c: string, rest: string) => `.${c === 'A' ? 'B' : 'A'}${rest}`), grpc.status.UNAUTHENTICATED],
        ['expired token', await cp.tokens.issue(NODE.id, 60, Date.now() - 3_600_000), grpc.status.UNAUTHENTICATED],
        ['token of another workload', await cp.issueToken('shop/b-1'), grpc.status.PERMISSION_DENIED],
      ];
      for (const [what, token, code] of cases) {
        const c = new XdsTestClient(cp.xdsPlaintextPort, 'delta', token);
        c.send({ node: NODE, type_url: T.SDS, resource_names_subscribe: ['default', 'ROOTCA'] });
        const s = await c.ended().catch((e: Error) => assert.fail(`${what}: ${e.message}`));
        assert.equal(s.code, code, what);
        assert.doesNotMatch(s.details, /shop|token|expired|signature/i, `${what}: the error reveals nothing`);
        assert.ok(await c.quiet(50), `${what}: no configuration was sent`);
        c.close();
      }
    } finally {
      await cp.stop();
      p.cleanup();
    }
  });

  test('a proxy receives its own certificate and the trust bundle over SDS', async () => {
    const p = new PolicyDir();
    baseMesh(p);
    const cp = await startPlane(p);
    const c = await client(cp, 'delta');
    try {
      c.send({ node: NODE, type_url: T.SDS, resource_names_subscribe: ['default', 'ROOTCA'] });
      const d = await c.next();
      assert.deepEqual(d.resources.map((r) => r.name).sort(), ['ROOTCA', 'default']);
      const cert = d.resources.find((r) => r.name === 'default')!.json.tls_certificate;
      const { X509Certificate } = await import('node:crypto');
      const x = new X509Certificate(cert.certificate_chain.inline_string);
      assert.equal(x.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/a');
      assert.match(cert.private_key.inline_string, /BEGIN PRIVATE KEY/);
      const bundle = new X509Certificate(d.resources.find((r) => r.name === 'ROOTCA')!.json.validation_context.trusted_ca.inline_string);
      assert.ok(x.verify(bundle.publicKey), 'the certificate is signed by the trust bundle\'s root');
    } finally {
      c.close();
      await cp.stop();
      p.cleanup();
    }
  });
});

describe('ADS admission and shutdown', () => {
  test('new streams beyond the per-second budget get RESOURCE_EXHAUSTED', async () => {
    const p = new PolicyDir();
    baseMesh(p);
    const cp = await startPlane(p, 2);
    const clients: XdsTestClient[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const c = await client(cp, 'delta');
        c.send({ node: NODE, type_url: T.CDS });
        clients.push(c);
      }
      await new Promise((r) => setTimeout(r, 300));
      const refused = clients.filter((c) => c.status?.code === grpc.status.RESOURCE_EXHAUSTED);
      assert.ok(refused.length >= 1, 'at least one stream refused');
      assert.ok(cp.ads.counters.streamsRejected >= 1);
    } finally {
      for (const c of clients) c.close();
      await cp.stop();
      p.cleanup();
    }
  });

  test('graceful shutdown ends streams cleanly after in-flight responses', async () => {
    const p = new PolicyDir();
    baseMesh(p);
    const cp = await startPlane(p);
    const c = await client(cp, 'sotw');
    try {
      c.send({ node: NODE, type_url: T.CDS, resource_names: [] });
      await c.next();
      await cp.stop();
      const s = await c.ended();
      assert.equal(s.code, grpc.status.OK);
    } finally {
      c.close();
      p.cleanup();
    }
  });
});

