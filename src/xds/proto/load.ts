/**
 * Stage: xds (proto loading). Loads Envoy's API definitions once, from the pinned `@grpc/grpc-js-xds`
 * package (there is no `@envoyproxy/protos` on npm), into one protobufjs Root shared by the whole process.
 *
 * Fields keep their proto names (`keepCase`), so builders write snake_case exactly as Envoy's docs and
 * Envoy's own config_dump do. Nothing here knows about policies.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);

/** The `.proto` files every Chancery build needs; each pulls in its own imports. */
export const ENTRY_PROTOS = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/header_mutation/v3/header_mutation.proto',
  'envoy/extensions/filters/http/dynamic_forward_proxy/v3/dynamic_forward_proxy.proto',
  'envoy/extensions/clusters/dynamic_forward_proxy/v3/cluster.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/admin/v3/config_dump.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/extensions/path/match/uri_template/v3/uri_template_match.proto',
];

/** Include roots inside the pinned package, in the order Envoy's imports expect. */
function includeDirs(): string[] {
  let pkgDir: string;
  try {
    pkgDir = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  } catch {
    throw new Error(
      'Envoy API definitions not found: the package @grpc/grpc-js-xds is not installed. Run `npm ci` in the project directory.',
    );
  }
  const deps = path.join(pkgDir, 'deps');
  const dirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d));
  const missing = dirs.filter((d) => !existsSync(d));
  if (missing.length > 0) {
    throw new Error(`Envoy API definitions incomplete; missing directories: ${missing.join(', ')}`);
  }
  // google/protobuf/descriptor.proto (for options) ships with protobufjs itself.
  dirs.push(path.dirname(require.resolve('protobufjs/package.json')));
  return dirs;
}

let root: protobuf.Root | undefined;

/** The process-wide Root with every Envoy type Chancery uses. Loads synchronously on first use (~1 s). */
export function envoyRoot(): protobuf.Root {
  if (root) return root;
  const dirs = includeDirs();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target) && existsSync(target)) return target;
    for (const d of dirs) {
      const candidate = path.join(d, target);
      if (existsSync(candidate)) return candidate;
    }
    // google/protobuf/*.proto are bundled inside protobufjs itself.
    return target;
  };
  r.loadSync(ENTRY_PROTOS, { keepCase: true, alternateCommentMode: false });
  r.resolveAll();
  root = r;
  return r;
}

/** Looks up a message type by its full name (`envoy.config.cluster.v3.Cluster`); throws if it is not loaded. */
export function messageType(fullName: string): protobuf.Type {
  const t = envoyRoot().lookup(fullName);
  if (!(t instanceof protobuf.Type)) throw new Error(`protobuf message type not loaded: ${fullName}`);
  return t;
}

/** Resolved types by name: protobufjs resolves a dotted name by walking the namespace tree on every call. */
const types = new Map<string, protobuf.Type>();

/** Looks up a message type by full name (with or without leading dot), cached. */
export function lookupType(name: string): protobuf.Type {
  let t = types.get(name);
  if (!t) {
    const found = envoyRoot().lookup(name.startsWith('.') ? name.slice(1) : name);
    if (!(found instanceof protobuf.Type)) throw new Error(`protobuf message type not loaded: ${name}`);
    types.set(name, (t = found));
  }
  return t;
}

/** Well-known wrapper messages and the scalar each wraps (proto3 JSON writes a wrapper as its bare value). */
export const WRAPPERS: Record<string, string> = {
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.BoolValue': 'bool',
  '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
};
