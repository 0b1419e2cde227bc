/**
 * The strict proto3-JSON codec: every silent trap of protobufjs is an error here.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeToJson, encodeJson, fromJson, lookupType, ProtoShapeError } from '../../src/xds/proto/strict.js';

const CLUSTER = 'envoy.config.cluster.v3.Cluster';

test('round trip keeps durations, enums, maps and Any', () => {
  const json = {
    name: 'c',
    type: 'EDS',
    connect_timeout: '1.5s',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
    per_connection_buffer_limit_bytes: 32768,
  };
  assert.deepEqual(decodeToJson(CLUSTER, encodeJson(CLUSTER, json)), json);
});

const bad: [string, object, RegExp][] = [
  ['unknown field', { name: 'c', bogus: 1 }, /\$\.bogus: unknown field/],
  ['wrong scalar type', { name: 7 }, /\$\.name: expected a string/],
  ['unknown enum value', { type: 'NOPE' }, /not a value of enum/],
  ['bad duration', { connect_timeout: 5 }, /expected a duration/],
  [
    'Any of a type that is not loaded',
    { typed_extension_protocol_options: { x: { '@type': 'type.googleapis.com/foo.Bar' } } },
    /foo\.Bar is not loaded/,
  ],
  ['Any without @type', { typed_extension_protocol_options: { x: {} } }, /expected an Any/],
  [
    'unknown field inside an Any',
    {
      typed_extension_protocol_options: {
        x: { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', nope: true },
      },
    },
    /nope: unknown field/,
  ],
  ['integer out of range', { per_connection_buffer_limit_bytes: -1 }, /expected an integer/],
  ['two members of a oneof', { type: 'EDS', cluster_type: { name: 'x' } }, /oneof/],
  ['null', { name: null }, /null is not allowed/],
];

for (const [name, json, re] of bad) {
  test(`strict encoding rejects: ${name}`, () => {
    assert.throws(
      () => encodeJson(CLUSTER, json),
      (e: unknown) => e instanceof ProtoShapeError && re.test((e as Error).message),
    );
  });
}

test('Struct and Value survive encoding (protobufjs bundles them with camelCase field names)', () => {
  const json = { json_format: { code: '%RESPONSE_CODE%', n: 3, on: true, nested: { list: ['a', 1] } } };
  assert.deepEqual(
    decodeToJson(
      'envoy.config.core.v3.SubstitutionFormatString',
      encodeJson('envoy.config.core.v3.SubstitutionFormatString', json),
    ),
    json,
  );
});

test('the fast path writes exactly the bytes of protobufjs encoding the strict messages', () => {
  const cases: [string, object][] = [
    [
      CLUSTER,
      {
        name: 'c',
        type: 'EDS',
        connect_timeout: '-0.25s',
        per_connection_buffer_limit_bytes: '32768',
        lb_policy: 0,
        metadata: { filter_metadata: { a: { s: 'x', n: -1.5, b: false, z: null, l: [1, 'y', { q: [] }] } } },
        typed_extension_protocol_options: {
          y: { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions' },
          x: {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            explicit_http_config: { http2_protocol_options: { max_concurrent_streams: 0, allow_connect: true } },
          },
        },
        circuit_breakers: { thresholds: [{ max_connections: 1, priority: 'HIGH' }, {}] },
        dns_lookup_family: 'V4_ONLY',
        ignore_health_on_host_removal: false,
        cleanup_interval: '5s',
        upstream_bind_config: { source_address: { address: '10.0.0.1', port_value: 0 } },
      },
    ],
    [
      'envoy.config.core.v3.SubstitutionFormatString',
      { json_format: { code: '%RESPONSE_CODE%' }, omit_empty_values: true },
    ],
    ['envoy.config.route.v3.RouteConfiguration', { name: 'r', virtual_hosts: [{ name: 'v', domains: ['a', 'b'] }] }],
    ['envoy.config.core.v3.HealthStatusSet', { statuses: ['HEALTHY', 3, 'DRAINING'] }],
    ['envoy.config.core.v3.DataSource', { inline_bytes: 'aGVsbG8=' }],
  ];
  for (const [type, json] of cases) {
    const slow = lookupType(type).encode(fromJson(type, json)).finish();
    assert.deepEqual(Buffer.from(encodeJson(type, json)), Buffer.from(slow), type);
  }
});
