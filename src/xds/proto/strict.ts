/**
 * Stage: xds (strict proto3-JSON codec). Converts the plain proto3-JSON objects that Chancery's builders produce
 * (snake_case field names, Durations as "1.5s", wrappers as bare values, Any as {"@type": ...}) into protobufjs
 * messages, and back.
 *
 * Why not protobufjs' own `fromObject`: it silently encodes an Any whose `@type` is not loaded as an EMPTY message,
 * drops unknown fields and coerces wrongly typed values. Any of those would reach Envoy as a mystery. Here each one is
 * an error that names the field path, raised when the resource is built.
 */
import Long from 'long';
import protobuf from 'protobufjs';
import { encodeDirect, Unsupported } from './direct.js';
import { lookupType, WRAPPERS } from './load.js';

export { lookupType };

/**
 * Where in a message a field is, built only when an error names it: joining path strings for every field of every
 * message was a large part of encoding.
 */
class FieldPath {
  constructor(
    private readonly parent: FieldPath | string,
    private readonly segment: string,
  ) {}

  toString(): string {
    return `${String(this.parent)}${this.segment}`;
  }
}
type Path = FieldPath | string;
const at = (parent: Path, segment: string): FieldPath => new FieldPath(parent, segment);

export class ProtoShapeError extends Error {
  readonly path: string;

  constructor(
    path: Path,
    readonly reason: string,
  ) {
    super(`${String(path)}: ${reason}`);
    this.path = String(path);
    this.name = 'ProtoShapeError';
  }
}

const TYPE_URL_PREFIX = 'type.googleapis.com/';

const INT32_RANGE: Record<string, [number, number]> = {
  int32: [-0x80000000, 0x7fffffff],
  sint32: [-0x80000000, 0x7fffffff],
  sfixed32: [-0x80000000, 0x7fffffff],
  uint32: [0, 0xffffffff],
  fixed32: [0, 0xffffffff],
};
const INT64_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/** protobufjs computes `fullName` by walking to the root and joining, on every read; it was most of encoding. */
const fullNames = new WeakMap<protobuf.Type, string>();

function fullNameOf(type: protobuf.Type): string {
  let n = fullNames.get(type);
  if (n === undefined) fullNames.set(type, (n = type.fullName));
  return n;
}

function typeNameOf(typeUrl: string): string {
  const slash = typeUrl.lastIndexOf('/');
  return slash >= 0 ? typeUrl.slice(slash + 1) : typeUrl;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

// ---------------------------------------------------------------------------------------------------------------
// JSON -> message

/** Converts proto3 JSON into a protobufjs message of `typeName`; throws ProtoShapeError with the field path. */
export function fromJson(typeName: string, json: unknown, path = '$'): protobuf.Message {
  return messageFromJson(lookupType(typeName), json, path);
}

/** Encodes proto3 JSON as protobuf bytes of `typeName` (strictly). */
export function encodeJson(typeName: string, json: unknown, path = '$'): Uint8Array {
  const type = lookupType(typeName);
  try {
    return encodeDirect(type, json);
  } catch (err) {
    if (!(err instanceof Unsupported)) throw err;
  }
  // The fast path declined (an error, or a form it does not write): this one raises the error with its path.
  return type.encode(messageFromJson(type, json, path)).finish();
}

/** Which JSON form a type has: the well-known types' own, or a plain message. Decided once per type. */
const forms = new WeakMap<protobuf.Type, string>();

function formOf(type: protobuf.Type): string {
  let f = forms.get(type);
  if (f === undefined) {
    const full = fullNameOf(type);
    f = full in WRAPPERS ? 'wrapper' : full.startsWith('.google.protobuf.') ? full : 'message';
    forms.set(type, f);
  }
  return f;
}

function messageFromJson(type: protobuf.Type, json: unknown, path: Path): protobuf.Message {
  const form = formOf(type);
  if (form !== 'message') {
    const full = fullNameOf(type);
    if (form === 'wrapper') return type.create({ value: scalarFromJson(WRAPPERS[full], json, path) });
    if (full === '.google.protobuf.Duration') return type.create(parseDuration(json, path));
    if (full === '.google.protobuf.Timestamp') return type.create(parseTimestamp(json, path));
    if (full === '.google.protobuf.Any') return type.create(anyFromJson(json, path));
    if (full === '.google.protobuf.Struct') {
      if (!isPlainObject(json)) throw new ProtoShapeError(path, 'expected an object (Struct)');
      return type.create(structFields(json, path));
    }
    if (full === '.google.protobuf.Value') return type.create(valueFromJson(json, path));
    if (full === '.google.protobuf.ListValue') {
      if (!Array.isArray(json)) throw new ProtoShapeError(path, 'expected an array (ListValue)');
      return type.create({
        values: json.map((v, i) => lookupType('google.protobuf.Value').create(valueFromJson(v, at(path, `[${i}]`)))),
      });
    }
  }
  const full = fullNameOf(type);

  if (!isPlainObject(json)) throw new ProtoShapeError(path, `expected an object (${full.slice(1)})`);
  const props: Record<string, unknown> = {};
  const oneofSeen = new Map<string, string>();
  for (const [key, value] of Object.entries(json)) {
    const field = type.fields[key] ?? findByJsonName(type, key);
    const fieldPath = at(path, `.${key}`);
    if (!field) throw new ProtoShapeError(fieldPath, `unknown field of ${full.slice(1)}`);
    if (value === undefined) continue;
    if (value === null) throw new ProtoShapeError(fieldPath, 'null is not allowed; omit the field instead');
    if (field.partOf) {
      const other = oneofSeen.get(field.partOf.name);
      if (other) throw new ProtoShapeError(fieldPath, `oneof "${field.partOf.name}" already set by "${other}"`);
      oneofSeen.set(field.partOf.name, field.name);
    }
    props[field.name] = fieldFromJson(field, value, fieldPath);
  }
  return type.create(props);
}

function findByJsonName(type: protobuf.Type, key: string): protobuf.Field | undefined {
  for (const f of type.fieldsArray) {
    if (jsonNameOf(f) === key) return f;
  }
  return undefined;
}

function jsonNameOf(f: protobuf.Field): string {
  const opt = f.options?.json_name;
  return typeof opt === 'string' ? opt : f.name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function fieldFromJson(field: protobuf.Field, value: unknown, path: Path): unknown {
  field.resolve();
  if (field instanceof protobuf.MapField) {
    if (!isPlainObject(value)) throw new ProtoShapeError(path, 'expected an object (map)');
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = singleFromJson(field, v, at(path, `.${k}`));
    return out;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) throw new ProtoShapeError(path, 'expected an array');
    return value.map((v, i) => singleFromJson(field, v, at(path, `[${i}]`)));
  }
  return singleFromJson(field, value, path);
}

function singleFromJson(field: protobuf.Field, value: unknown, path: Path): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return messageFromJson(rt, value, path);
  if (rt instanceof protobuf.Enum) return enumFromJson(rt, value, path);
  return scalarFromJson(field.type, value, path);
}

function enumFromJson(e: protobuf.Enum, value: unknown, path: Path): number {
  if (typeof value === 'string') {
    const n = e.values[value];
    if (n === undefined) throw new ProtoShapeError(path, `"${value}" is not a value of enum ${e.name}`);
    return n;
  }
  if (typeof value === 'number' && Number.isInteger(value) && value in e.valuesById) return value;
  throw new ProtoShapeError(path, `expected a name of enum ${e.name}`);
}

function scalarFromJson(type: string, value: unknown, path: Path): unknown {
  switch (type) {
    case 'string':
      if (typeof value !== 'string') throw new ProtoShapeError(path, 'expected a string');
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw new ProtoShapeError(path, 'expected a boolean');
      return value;
    case 'double':
    case 'float':
      if (typeof value !== 'number' || Number.isNaN(value)) throw new ProtoShapeError(path, 'expected a number');
      return value;
    case 'bytes':
      if (value instanceof Uint8Array) return value;
      if (typeof value === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) return Buffer.from(value, 'base64');
      throw new ProtoShapeError(path, 'expected bytes (base64 string)');
    default:
      break;
  }
  if (type in INT32_RANGE) {
    const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
    const [lo, hi] = INT32_RANGE[type];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < lo || n > hi) {
      throw new ProtoShapeError(path, `expected an integer in [${lo}, ${hi}] (${type})`);
    }
    return n;
  }
  if (INT64_TYPES.has(type)) {
    const unsigned = type === 'uint64' || type === 'fixed64';
    if (typeof value === 'number' && Number.isSafeInteger(value) && (!unsigned || value >= 0)) return value;
    if (typeof value === 'string' && (unsigned ? /^\d+$/ : /^-?\d+$/).test(value)) {
      return Long.fromString(value, unsigned);
    }
    throw new ProtoShapeError(path, `expected an integer (${type})`);
  }
  throw new ProtoShapeError(path, `unsupported scalar type ${type}`);
}

const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;

function parseDuration(json: unknown, path: Path): { seconds: number; nanos: number } {
  const m = typeof json === 'string' ? DURATION_RE.exec(json) : null;
  if (!m) throw new ProtoShapeError(path, 'expected a duration such as "1.5s"');
  const sign = m[1] ? -1 : 1;
  const seconds = Number(m[2]);
  if (seconds > 315576000000) throw new ProtoShapeError(path, 'duration out of range');
  const nanos = m[3] ? Number(m[3].padEnd(9, '0')) : 0;
  return { seconds: sign * seconds, nanos: sign * nanos };
}

function parseTimestamp(json: unknown, path: Path): { seconds: number; nanos: number } {
  const ms = typeof json === 'string' ? Date.parse(json) : NaN;
  if (Number.isNaN(ms)) throw new ProtoShapeError(path, 'expected an RFC 3339 timestamp');
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

function anyFromJson(json: unknown, path: Path): { type_url: string; value: Uint8Array } {
  if (!isPlainObject(json) || typeof json['@type'] !== 'string') {
    throw new ProtoShapeError(path, 'expected an Any with an "@type"');
  }
  const typeUrl = json['@type'];
  const innerName = typeNameOf(typeUrl);
  let inner: protobuf.Type;
  try {
    inner = lookupType(innerName);
  } catch {
    throw new ProtoShapeError(at(path, '.@type'), `type ${innerName} is not loaded (add its .proto to ENTRY_PROTOS)`);
  }
  const { '@type': _t, ...rest } = json;
  // Well-known types with a special JSON form are wrapped as {"@type", "value"}.
  const isSpecial = fullNameOf(inner) in WRAPPERS || fullNameOf(inner).startsWith('.google.protobuf.');
  const body = isSpecial && 'value' in rest ? rest.value : rest;
  const msg = messageFromJson(inner, body, path);
  return { type_url: typeUrl, value: inner.encode(msg).finish() };
}

function structFields(json: Record<string, unknown>, path: Path): { fields: Record<string, unknown> } {
  const valueType = lookupType('google.protobuf.Value');
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) fields[k] = valueType.create(valueFromJson(v, at(path, `.${k}`)));
  return { fields };
}

/**
 * Field name of google.protobuf.Value: protobufjs bundles struct.proto with camelCase names whatever `keepCase`
 * says, so look the name up instead of assuming it.
 */
function valueField(snake: string): string {
  let name = valueFields.get(snake);
  if (name === undefined) {
    const fields = lookupType('google.protobuf.Value').fields;
    valueFields.set(
      snake,
      (name = fields[snake] ? snake : snake.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())),
    );
  }
  return name;
}
const valueFields = new Map<string, string>();

function valueFromJson(json: unknown, path: Path): Record<string, unknown> {
  if (json === null) return { [valueField('null_value')]: 0 };
  if (typeof json === 'number') return { [valueField('number_value')]: json };
  if (typeof json === 'string') return { [valueField('string_value')]: json };
  if (typeof json === 'boolean') return { [valueField('bool_value')]: json };
  if (Array.isArray(json)) {
    const lv = lookupType('google.protobuf.ListValue');
    return { [valueField('list_value')]: messageFromJson(lv, json, path) };
  }
  if (isPlainObject(json)) {
    const st = lookupType('google.protobuf.Struct');
    return { [valueField('struct_value')]: messageFromJson(st, json, path) };
  }
  throw new ProtoShapeError(path, 'expected a JSON value');
}

// ---------------------------------------------------------------------------------------------------------------
// message -> JSON (for tests, config dumps and debugging; the inverse of fromJson)

/** Decodes bytes of `typeName` into proto3 JSON (snake_case names, defaults omitted). */
export function decodeToJson(typeName: string, bytes: Uint8Array): unknown {
  const type = lookupType(typeName);
  return messageToJson(type, type.decode(bytes));
}

/** Converts a decoded protobufjs message into proto3 JSON. */
export function messageToJson(type: protobuf.Type, msg: protobuf.Message | Record<string, unknown>): unknown {
  const m = msg as Record<string, unknown>;
  const full = fullNameOf(type);
  if (full === '.google.protobuf.Duration') {
    const s = Number(m.seconds ?? 0);
    const n = Number(m.nanos ?? 0);
    return n === 0 ? `${s}s` : `${s + n / 1e9}s`;
  }
  if (full in WRAPPERS) return scalarToJson(WRAPPERS[full], m.value);
  if (full === '.google.protobuf.Any') {
    const typeUrl = String(m.type_url ?? '');
    const inner = lookupType(typeNameOf(typeUrl));
    const body = messageToJson(inner, inner.decode(m.value as Uint8Array));
    return isPlainObject(body) && !fullNameOf(inner).startsWith('.google.protobuf.')
      ? { '@type': typeUrl, ...body }
      : { '@type': typeUrl, value: body };
  }
  if (full === '.google.protobuf.Struct') {
    const out: Record<string, unknown> = {};
    const fields = (m.fields ?? {}) as Record<string, Record<string, unknown>>;
    for (const [k, v] of Object.entries(fields)) out[k] = valueToJson(v);
    return out;
  }
  if (full === '.google.protobuf.Value') return valueToJson(m);
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    field.resolve();
    // Presence: decoded and created messages hold set fields as own properties; defaults live on the prototype.
    if (!Object.prototype.hasOwnProperty.call(m, field.name)) continue;
    const v = m[field.name];
    if (v === undefined || v === null) continue;
    if (field instanceof protobuf.MapField) {
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length === 0) continue;
      out[field.name] = Object.fromEntries(entries.map(([k, x]) => [k, singleToJson(field, x)]));
    } else if (field.repeated) {
      const arr = v as unknown[];
      if (arr.length === 0) continue;
      out[field.name] = arr.map((x) => singleToJson(field, x));
    } else {
      // proto3 scalars at their default value are omitted (unless in a oneof or `optional`).
      if (!field.partOf && !(field.resolvedType instanceof protobuf.Type) && isDefaultScalar(v)) continue;
      out[field.name] = singleToJson(field, v);
    }
  }
  return out;
}

function isDefaultScalar(v: unknown): boolean {
  if (v === 0 || v === '' || v === false) return true;
  if (v instanceof Uint8Array) return v.length === 0;
  if (Long.isLong(v)) return (v as Long).isZero();
  return false;
}

function singleToJson(field: protobuf.Field, v: unknown): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return messageToJson(rt, v as protobuf.Message);
  if (rt instanceof protobuf.Enum) return rt.valuesById[v as number] ?? v;
  return scalarToJson(field.type, v);
}

function scalarToJson(type: string, v: unknown): unknown {
  if (type === 'bytes') return Buffer.from(v as Uint8Array).toString('base64');
  if (INT64_TYPES.has(type)) return Long.isLong(v) ? (v as Long).toString() : String(v);
  return v;
}

function valueToJson(v: Record<string, unknown>): unknown {
  const has = (snake: string): boolean => Object.prototype.hasOwnProperty.call(v, valueField(snake));
  const get = (snake: string): unknown => v[valueField(snake)];
  if (has('number_value')) return get('number_value');
  if (has('string_value')) return get('string_value');
  if (has('bool_value')) return get('bool_value');
  if (has('struct_value'))
    return messageToJson(lookupType('google.protobuf.Struct'), get('struct_value') as protobuf.Message);
  if (has('list_value'))
    return (((get('list_value') as Record<string, unknown>).values as Record<string, unknown>[] | undefined) ?? []).map(
      valueToJson,
    );
  return null;
}

export { TYPE_URL_PREFIX };
