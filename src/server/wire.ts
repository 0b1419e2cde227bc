/**
 * Stage: server. The ADS wire: a hand-written grpc-js service definition whose response serializer is the identity,
 * so responses assembled from cached per-resource bytes go to the socket without being re-encoded, and whose request
 * deserializer never throws (a malformed request becomes a value the stream handler rejects with a clear status).
 */
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { lookupType } from '../xds/proto/strict.js';
import type { EncodedResource } from '../snapshot/resource-cache.js';

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** Plain view of a (Delta)DiscoveryRequest as decoded by protobufjs with `longs: String`. */
export interface SotwRequest {
  version_info: string;
  node?: NodeInfo;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail?: { code: number; message: string };
}

export interface DeltaRequest {
  node?: NodeInfo;
  type_url: string;
  resource_names_subscribe: string[];
  resource_names_unsubscribe: string[];
  initial_resource_versions: Record<string, string>;
  response_nonce: string;
  error_detail?: { code: number; message: string };
}

export interface NodeInfo {
  id: string;
  cluster: string;
  metadata?: Record<string, unknown>;
  user_agent_name?: string;
  user_agent_version?: string;
}

export interface Malformed {
  malformed: string;
}

export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** A NACK's error_detail.message is kept to this many UTF-8 bytes before it reaches logs, status and history. */
export const MAX_NACK_MESSAGE_BYTES = 4096;

/** The message cut to `max` UTF-8 bytes (on a character boundary), marked with its original size when cut. */
export function boundNackMessage(message: string, max = MAX_NACK_MESSAGE_BYTES): string {
  if (message.length * 3 <= max) return message; // fast path: a UTF-16 unit is at most 3 bytes of UTF-8
  const bytes = Buffer.byteLength(message);
  if (bytes <= max) return message;
  const head = Buffer.from(message).subarray(0, max).toString('utf8').replace(/\uFFFD+$/, '');
  return `${head}... [truncated: ${bytes} bytes]`;
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, arrays: true, objects: true, oneofs: true };

function decoder<T>(typeName: string): (buf: Buffer) => T | Malformed {
  let type: protobuf.Type | undefined;
  return (buf) => {
    try {
      type ??= lookupType(typeName);
      const msg = type.decode(buf) as unknown as Record<string, unknown>;
      // Scalars, lists and maps read straight off the message (protobufjs keeps defaults on its prototype):
      // a full toObject with defaults costs more than the rest of an ACK's handling. Only the node is converted.
      const obj: Record<string, unknown> = {};
      for (const f of type.fieldsArray) if (f.name !== 'node' && f.name !== 'error_detail') obj[f.name] = msg[f.name];
      const node = msg.node ? (lookupType('envoy.config.core.v3.Node').toObject(msg.node as protobuf.Message, TO_OBJECT) as Record<string, unknown>) : undefined;
      if (node) {
        // Keep only what Chancery reads; metadata is a Struct we flatten to plain JSON.
        obj.node = {
          id: node.id ?? '',
          cluster: node.cluster ?? '',
          user_agent_name: node.user_agent_name ?? '',
          user_agent_version: (node.user_agent_version as string | undefined) ?? '',
          metadata: structToJson(node.metadata as Record<string, unknown> | null | undefined),
        };
      } else {
        delete obj.node;
      }
      const err = msg.error_detail as { code?: number; message?: string } | null | undefined;
      if (err) obj.error_detail = { code: err.code ?? 0, message: err.message ?? '' };
      else delete obj.error_detail;
      return obj as T;
    } catch (e) {
      return { malformed: (e as Error).message };
    }
  };
}

function structToJson(s: Record<string, unknown> | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const fields = (s?.fields ?? {}) as Record<string, Record<string, unknown>>;
  // protobufjs names google.protobuf.Value's fields in camelCase (its bundled struct.proto).
  const value = (v: Record<string, unknown>): unknown => {
    if (v.kind === 'stringValue') return v.stringValue;
    if (v.kind === 'numberValue') return v.numberValue;
    if (v.kind === 'boolValue') return v.boolValue;
    if (v.kind === 'structValue') return structToJson(v.structValue as Record<string, unknown>);
    if (v.kind === 'listValue') return ((v.listValue as { values?: Record<string, unknown>[] }).values ?? []).map(value);
    return null;
  };
  for (const [k, v] of Object.entries(fields)) out[k] = value(v);
  return out;
}

export function isMalformed(x: unknown): x is Malformed {
  return typeof x === 'object' && x !== null && 'malformed' in x;
}

const identity = (b: Buffer): Buffer => b;
const toBuffer = (b: Buffer | Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

export const ADS_DEFINITION = {
  StreamAggregatedResources: {
    path: `/${ADS_SERVICE}/StreamAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: decoder<SotwRequest>('envoy.service.discovery.v3.DiscoveryRequest'),
    responseSerialize: toBuffer,
    responseDeserialize: identity,
  },
  DeltaAggregatedResources: {
    path: `/${ADS_SERVICE}/DeltaAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: decoder<DeltaRequest>('envoy.service.discovery.v3.DeltaDiscoveryRequest'),
    responseSerialize: toBuffer,
    responseDeserialize: identity,
  },
} as unknown as grpc.ServiceDefinition;

const CONTROL_PLANE_ID = 'chancery';

/** DiscoveryResponse: version_info=1, resources=2 (Any), type_url=4, nonce=5, control_plane=6. */
export function encodeSotwResponse(versionInfo: string, typeUrl: string, nonce: string, resources: readonly EncodedResource[]): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32(10).string(versionInfo);
  for (const r of resources) w.uint32(18).bytes(r.any);
  w.uint32(34).string(typeUrl);
  w.uint32(42).string(nonce);
  w.uint32(50).fork().uint32(10).string(CONTROL_PLANE_ID).ldelim();
  return w.finish();
}

/** DeltaDiscoveryResponse: system_version_info=1, resources=2 (Resource), type_url=4, nonce=5, removed_resources=6, control_plane=7. */
export function encodeDeltaResponse(
  systemVersion: string,
  typeUrl: string,
  nonce: string,
  resources: readonly EncodedResource[],
  removed: readonly string[],
): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32(10).string(systemVersion);
  for (const r of resources) w.uint32(18).bytes(r.delta);
  w.uint32(34).string(typeUrl);
  w.uint32(42).string(nonce);
  for (const name of removed) w.uint32(50).string(name);
  w.uint32(58).fork().uint32(10).string(CONTROL_PLANE_ID).ldelim();
  return w.finish();
}
