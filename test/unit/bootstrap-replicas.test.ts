/**
 * `chancery bootstrap --xds-address A,B,C`: the ADS cluster lists every replica, ejects one that refuses
 * connections, and Envoy accepts the bootstrap (`envoy --mode validate`). One address stays as it was.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runBootstrap } from '../../src/cli/bootstrap.js';
import { validateEnvoyConfig } from '../support/envoy.js';

const xdsCluster = (config: any) => config.static_resources.clusters.find((c: any) => c.name === 'chancery-xds');

const ALL_REPLICAS =
  'bootstrap --xds-address with three replicas lists them all in the ADS cluster, and Envoy accepts it';
test(ALL_REPLICAS, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chancery-bootstrap-replicas-'));
  try {
    const base = ['--config', 'examples/mesh', '--workload', 'shop/frontend-1', '--state-dir', dir];
    const three = path.join(dir, 'three.json');
    const list = '127.0.50.2:15010,127.0.50.3:15010, 127.0.50.4:15011';
    assert.equal(await runBootstrap([...base, '--xds-address', list, '--out', three]), 0);
    const c = xdsCluster(JSON.parse(readFileSync(three, 'utf8')));
    const addrs = c.load_assignment.endpoints[0].lb_endpoints.map(
      (e: any) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`,
    );
    assert.deepEqual(addrs, ['127.0.50.2:15010', '127.0.50.3:15010', '127.0.50.4:15011']);
    assert.equal(c.outlier_detection.consecutive_local_origin_failure, 1, 'a dead replica is ejected at once');
    const v = await validateEnvoyConfig(JSON.parse(readFileSync(three, 'utf8')));
    assert.ok(v.ok, v.output);

    const one = path.join(dir, 'one.json');
    assert.equal(await runBootstrap([...base, '--xds-address', '127.0.50.2:15010', '--out', one]), 0);
    const single = xdsCluster(JSON.parse(readFileSync(one, 'utf8')));
    assert.equal(single.load_assignment.endpoints[0].lb_endpoints.length, 1);
    assert.equal(single.outlier_detection, undefined, 'one control plane: as before');
    assert.notEqual(await runBootstrap([...base, '--xds-address', '127.0.50.2:15010,nope', '--out', one]), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
