/**
 * Stage: xds (strict codec, fast path). Writes proto3 JSON straight into protobuf bytes, without building
 * protobufjs messages first: that intermediate tree was about 3/4 of encoding a snapshot. It accepts a subset of what
 * strict.ts accepts and writes exactly the bytes protobufjs' generated encoder writes for strict.ts' messages
 * (fields in field-number order, packed repeated scalars, every set field written). Anything else (an error, a rare
 * well-known type, a JSON form it does not know) throws `Unsupported`, and strict.ts encodes that resource the slow
 * way, which raises the error with its field path. So it must never accept what strict.ts refuses.
 */
import Long from 'long';
import protobuf from 'protobufjs';
import { lookupType, WRAPPERS } from './load.js';

/** Not handled here: the caller encodes the resource with the full strict codec instead. */
export class Unsupported extends Error {}

const unsupported = (): never => {
  throw new Unsupported();
};

type Writer = protobuf.Writer;

/** How one field is written; computed once per field from the process-wide, immutable Root. */
interface FieldPlan {
  id: number;
  /** Tag of one element (repeated, non-packed) or of the field. */
  tag: number;
  kind: 'scalar' | 'enum' | 'message' | 'map';
  repeated: boolean;
  packed: boolean;
  /** The writer method: a scalar type name, `int32` for enums. */
  write: string;
  scalar: string;
  message?: protobuf.Type;
  enumType?: protobuf.Enum;
  oneof?: string;
  /** Map fields: the tag and method of the value (tag 16|wireType) inside an entry. */
  mapValueTag?: number;
}

interface TypePlan {
  form: 'message' | 'wrapper' | 'duration' | 'any' | 'struct' | 'value' | 'list' | 'other';
  /** By proto name and by JSON name, as strict.ts looks them up. */
  byKey: Map<string, FieldPlan>;
  wrapperScalar?: string;
}

const basic = protobuf.types.basic as Record<string, number | undefined>;
const packedTypes = protobuf.types.packed as Record<string, number | undefined>;

/** Plans by type: derived from the loaded Root, which never changes once loaded, so safe to share process-wide. */
const plans = new WeakMap<protobuf.Type, TypePlan>();

function planOf(type: protobuf.Type): TypePlan {
  let p = plans.get(type);
  if (!p) plans.set(type, (p = makePlan(type)));
  return p;
}

function makePlan(type: protobuf.Type): TypePlan {
  const full = type.fullName;
  const byKey = new Map<string, FieldPlan>();
  if (full in WRAPPERS) return { form: 'wrapper', byKey, wrapperScalar: WRAPPERS[full] };
  if (full === '.google.protobuf.Duration') return { form: 'duration', byKey };
  if (full === '.google.protobuf.Any') return { form: 'any', byKey };
  if (full === '.google.protobuf.Struct') return { form: 'struct', byKey };
  if (full === '.google.protobuf.Value') return { form: 'value', byKey };
  if (full === '.google.protobuf.ListValue') return { form: 'list', byKey };
  if (full === '.google.protobuf.Timestamp') return { form: 'other', byKey };
  for (const f of type.fieldsArray) {
    const plan = fieldPlan(f.resolve());
    // strict.ts tries the proto name first, then the JSON name: a JSON name never shadows a proto name.
    if (plan) byKey.set(f.name, plan);
  }
  for (const f of type.fieldsArray) {
    const jsonName = jsonNameOf(f);
    if (!byKey.has(jsonName)) {
      const plan = byKey.get(f.name);
      // A field this path cannot write stays unknown here, which sends the resource to the slow path.
      if (plan) byKey.set(jsonName, plan);
    }
  }
  // A field this path cannot write (groups, required, odd map keys) makes the whole type slow.
  if (type.fieldsArray.some((f) => !byKey.has(f.name))) return { form: 'other', byKey: new Map() };
  return { form: 'message', byKey };
}

function jsonNameOf(f: protobuf.Field): string {
  const opt = f.options?.json_name;
  return typeof opt === 'string' ? opt : f.name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function fieldPlan(f: protobuf.Field): FieldPlan | undefined {
  if (f.required || f.delimited) return undefined;
  const rt = f.resolvedType;
  const scalar = rt instanceof protobuf.Enum ? 'int32' : f.type;
  const wire = basic[scalar];
  const oneof = f.partOf?.name;
  const base = { id: f.id, write: scalar, scalar: f.type, ...(oneof ? { oneof } : {}) };
  if (f instanceof protobuf.MapField) {
    if (f.keyType !== 'string') return undefined;
    const kind = rt instanceof protobuf.Type ? 'message' : rt instanceof protobuf.Enum ? 'enum' : 'scalar';
    return {
      ...base,
      tag: ((f.id << 3) | 2) >>> 0,
      kind: 'map',
      repeated: false,
      packed: false,
      ...(rt instanceof protobuf.Type ? { message: rt } : {}),
      ...(rt instanceof protobuf.Enum ? { enumType: rt } : {}),
      ...(kind === 'message' ? {} : { mapValueTag: 16 | wire! }),
      // The kind of the map's values, for `writeSingle`.
      scalar: kind === 'message' ? 'message' : kind === 'enum' ? 'enum' : f.type,
    };
  }
  const packed = f.repeated && f.packed && packedTypes[scalar] !== undefined;
  if (rt instanceof protobuf.Type) {
    return { ...base, tag: ((f.id << 3) | 2) >>> 0, kind: 'message', repeated: f.repeated, packed: false, message: rt };
  }
  return {
    ...base,
    tag: packed ? ((f.id << 3) | 2) >>> 0 : ((f.id << 3) | wire!) >>> 0,
    kind: rt instanceof protobuf.Enum ? 'enum' : 'scalar',
    repeated: f.repeated,
    packed,
    ...(rt instanceof protobuf.Enum ? { enumType: rt } : {}),
  };
}

/** Encodes `json` as a message of `type` into bytes, or throws Unsupported. */
export function encodeDirect(type: protobuf.Type, json: unknown): Uint8Array {
  const w = protobuf.Writer.create();
  writeMessage(type, json, w, 0);
  return w.finish();
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** Writes the fields of a message (without its own tag and length). */
function writeMessage(type: protobuf.Type, json: unknown, w: Writer, depth: number): void {
  // protobufjs refuses to encode deeper than its recursion limit; let the slow path raise that.
  if (depth > (protobuf.util as unknown as { recursionLimit: number }).recursionLimit) unsupported();
  const plan = planOf(type);
  switch (plan.form) {
    case 'wrapper':
      // Wrappers always write their value (strict.ts creates it as an own property).
      writeScalarField(plan.wrapperScalar!, ((1 << 3) | basic[plan.wrapperScalar!]!) >>> 0, json, w);
      return;
    case 'duration':
      return writeDuration(json, w);
    case 'any':
      return writeAny(json, w, depth);
    case 'struct':
      return writeStruct(json, w, depth);
    case 'value':
      return writeValueMessage(json, w, depth);
    case 'list':
      return writeList(json, w, depth);
    case 'other':
      return unsupported();
  }
  if (!isPlainObject(json)) return unsupported();
  const present: [FieldPlan, unknown][] = [];
  let sorted = true;
  for (const key in json) {
    if (!Object.prototype.hasOwnProperty.call(json, key)) continue;
    const field = plan.byKey.get(key) ?? unsupported();
    const value = json[key];
    if (value === undefined) continue;
    if (value === null) unsupported();
    if (present.length > 0 && present[present.length - 1][0].id >= field.id) sorted = false;
    present.push([field, value]);
  }
  if (!sorted) {
    present.sort((a, b) => a[0].id - b[0].id);
    for (let i = 1; i < present.length; i++) if (present[i][0].id === present[i - 1][0].id) unsupported();
  }
  let oneofs: string[] | undefined;
  for (const [field, value] of present) {
    if (field.oneof) {
      if (oneofs?.includes(field.oneof)) unsupported();
      (oneofs ??= []).push(field.oneof);
    }
    writeField(field, value, w, depth);
  }
}

function writeField(field: FieldPlan, value: unknown, w: Writer, depth: number): void {
  if (field.kind === 'map') {
    if (!isPlainObject(value)) unsupported();
    const map = value as Record<string, unknown>;
    for (const k of Object.keys(map)) {
      if (k === '__proto__') unsupported(); // strict.ts' copy would set a prototype, not an entry
      w.uint32(field.tag).fork().uint32(10).string(k);
      const v = map[k];
      if (field.message) {
        writeMessage(field.message, v, w.uint32(18).fork(), depth + 1);
        w.ldelim();
      } else if (field.enumType) w.uint32(field.mapValueTag!).int32(enumValue(field.enumType, v));
      else writeScalarField(field.scalar, field.mapValueTag!, v, w);
      w.ldelim();
    }
    return;
  }
  if (!field.repeated) return writeSingle(field, field.tag, value, w, depth);
  if (!Array.isArray(value)) unsupported();
  const list = value as unknown[];
  if (list.length === 0) return;
  if (field.packed) {
    w.uint32(field.tag).fork();
    for (const v of list) writeValue(field, v, w);
    w.ldelim();
    return;
  }
  for (const v of list) writeSingle(field, field.tag, v, w, depth);
}

function writeSingle(field: FieldPlan, tag: number, value: unknown, w: Writer, depth: number): void {
  if (field.message) {
    writeMessage(field.message, value, w.uint32(tag).fork(), depth + 1);
    w.ldelim();
  } else {
    w.uint32(tag);
    writeValue(field, value, w);
  }
}

/** A scalar or enum value, without its tag. */
function writeValue(field: FieldPlan, value: unknown, w: Writer): void {
  if (field.enumType) w.int32(enumValue(field.enumType, value));
  else (w as unknown as Record<string, (v: unknown) => Writer>)[field.write](scalarValue(field.scalar, value));
}

function writeScalarField(scalar: string, tag: number, value: unknown, w: Writer): void {
  (w.uint32(tag) as unknown as Record<string, (v: unknown) => Writer>)[scalar](scalarValue(scalar, value));
}

function enumValue(e: protobuf.Enum, value: unknown): number {
  if (typeof value === 'string') {
    if (!Object.prototype.hasOwnProperty.call(e.values, value)) unsupported();
    return e.values[value];
  }
  if (typeof value === 'number' && Number.isInteger(value) && value in e.valuesById) return value;
  return unsupported();
}

const INT32_RANGE: Record<string, [number, number]> = {
  int32: [-0x80000000, 0x7fffffff],
  sint32: [-0x80000000, 0x7fffffff],
  sfixed32: [-0x80000000, 0x7fffffff],
  uint32: [0, 0xffffffff],
  fixed32: [0, 0xffffffff],
};

/** The value strict.ts' scalarFromJson gives the message, or Unsupported where it would throw. */
function scalarValue(type: string, value: unknown): unknown {
  switch (type) {
    case 'string':
      return typeof value === 'string' ? value : unsupported();
    case 'bool':
      return typeof value === 'boolean' ? value : unsupported();
    case 'double':
    case 'float':
      return typeof value === 'number' && !Number.isNaN(value) ? value : unsupported();
    case 'bytes':
      if (value instanceof Uint8Array) return value;
      if (typeof value === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) return Buffer.from(value, 'base64');
      return unsupported();
  }
  const range = INT32_RANGE[type];
  if (range) {
    const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
    return typeof n === 'number' && Number.isInteger(n) && n >= range[0] && n <= range[1] ? n : unsupported();
  }
  if (type === 'int64' || type === 'uint64' || type === 'sint64' || type === 'fixed64' || type === 'sfixed64') {
    const unsigned = type === 'uint64' || type === 'fixed64';
    if (typeof value === 'number' && Number.isSafeInteger(value) && (!unsigned || value >= 0)) return value;
    if (typeof value === 'string' && (unsigned ? /^\d+$/ : /^-?\d+$/).test(value)) {
      return Long.fromString(value, unsigned);
    }
  }
  return unsupported();
}

const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;

/** strict.ts creates a Duration with both fields set, so both are written, zero or not. */
function writeDuration(json: unknown, w: Writer): void {
  const m = typeof json === 'string' ? DURATION_RE.exec(json) : null;
  if (!m) return unsupported();
  const sign = m[1] ? -1 : 1;
  const seconds = Number(m[2]);
  if (seconds > 315576000000) unsupported();
  const nanos = m[3] ? Number(m[3].padEnd(9, '0')) : 0;
  w.uint32(8).int64(sign * seconds);
  w.uint32(16).int32(sign * nanos);
}

function writeAny(json: unknown, w: Writer, depth: number): void {
  if (!isPlainObject(json) || typeof json['@type'] !== 'string') return unsupported();
  const typeUrl = json['@type'];
  const slash = typeUrl.lastIndexOf('/');
  const inner = lookup(slash >= 0 ? typeUrl.slice(slash + 1) : typeUrl);
  // Well-known types inside an Any have a JSON form of their own ({"@type", "value"}): the slow path's.
  if (planOf(inner).form !== 'message') unsupported();
  const { '@type': _t, ...rest } = json;
  w.uint32(10).string(typeUrl);
  // An Any's value is the inner message's bytes: the same as writing the message as a length-delimited field.
  writeMessage(inner, rest, w.uint32(18).fork(), depth);
  w.ldelim();
}

/**
 * google.protobuf.Struct, Value and ListValue as strict.ts builds them (field numbers from struct.proto): a Struct
 * is map<string, Value> `fields` = 1; a Value sets exactly one of null_value = 1 (enum), number_value = 2 (double),
 * string_value = 3, bool_value = 4, struct_value = 5, list_value = 6; a ListValue is repeated Value `values` = 1.
 */
function writeStruct(json: unknown, w: Writer, depth: number): void {
  if (!isPlainObject(json)) return unsupported();
  for (const k of Object.keys(json)) {
    if (k === '__proto__') unsupported();
    w.uint32(10).fork().uint32(10).string(k);
    writeValueMessage(json[k], w.uint32(18).fork(), depth + 1);
    w.ldelim().ldelim();
  }
}

function writeValueMessage(json: unknown, w: Writer, depth: number): void {
  if (depth > (protobuf.util as unknown as { recursionLimit: number }).recursionLimit) unsupported();
  if (json === null) w.uint32(8).int32(0);
  else if (typeof json === 'number') w.uint32(17).double(json);
  else if (typeof json === 'string') w.uint32(26).string(json);
  else if (typeof json === 'boolean') w.uint32(32).bool(json);
  else if (Array.isArray(json)) {
    writeList(json, w.uint32(50).fork(), depth + 1);
    w.ldelim();
  } else if (isPlainObject(json)) {
    writeStruct(json, w.uint32(42).fork(), depth + 1);
    w.ldelim();
  } else unsupported();
}

function writeList(json: unknown, w: Writer, depth: number): void {
  if (!Array.isArray(json)) return unsupported();
  for (const v of json) {
    writeValueMessage(v, w.uint32(10).fork(), depth + 1);
    w.ldelim();
  }
}

function lookup(name: string): protobuf.Type {
  try {
    return lookupType(name);
  } catch {
    return unsupported();
  }
}
