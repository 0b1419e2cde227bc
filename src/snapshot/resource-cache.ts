/**
 * Stage: snapshot. Serialize once, fan out: each distinct resource (by type and content) is encoded exactly once
 * and its bytes are shared by every proxy snapshot that contains it. Entries hold the three encodings the server
 * needs: the resource message, its Any (SotW), and the Delta `Resource` wrapper (name, version, Any).
 */
import protobuf from 'protobufjs';
import type { Origin } from '../diag/diagnostic.js';
import { encodeJson, ProtoShapeError } from '../xds/proto/strict.js';
import { messageName, type TypeUrl } from '../xds/type-urls.js';
import { contentHash } from './canonical.js';
import type { Snapshot } from './snapshot.js';

export interface EncodedResource {
  typeUrl: TypeUrl;
  name: string;
  /** Content hash of the resource: its version in Delta. */
  version: string;
  /** google.protobuf.Any bytes, for SotW `resources`. */
  any: Uint8Array;
  /** envoy.service.discovery.v3.Resource bytes, for Delta `resources`. */
  delta: Uint8Array;
  /** proto3 JSON of the resource, for status, render and tests. */
  json: object;
  origins: Origin[];
}

/** A resource the strict codec refused (see xds/proto/strict.ts), with the policy origins it was built from. */
export class ResourceEncodeError extends Error {
  constructor(
    readonly typeUrl: TypeUrl,
    readonly resourceName: string,
    readonly origins: Origin[],
    readonly shape: ProtoShapeError,
  ) {
    super(shape.message);
    this.name = 'ResourceEncodeError';
  }
}

export class ResourceCache {
  private entries = new Map<string, EncodedResource>();
  private sizeAfterSweep = 0;
  encodes = 0;

  /** Returns the shared encoding of a resource, encoding it only if its content was never seen. */
  /** Resources shared by reference between proxies skip even the hashing. */
  private byObject = new WeakMap<object, EncodedResource>();

  get(typeUrl: TypeUrl, name: string, json: object, origins: Origin[]): EncodedResource {
    const known = this.byObject.get(json);
    if (known && known.origins === origins) return known;
    const entry = this.lookup(typeUrl, name, json, origins);
    this.byObject.set(json, entry);
    return entry;
  }

  private lookup(typeUrl: TypeUrl, name: string, json: object, origins: Origin[]): EncodedResource {
    // Builders emit keys in a fixed order, so plain JSON is canonical enough here (and several times faster).
    const version = contentHash(JSON.stringify(json));
    const key = `${typeUrl}\0${version}`;
    const hit = this.entries.get(key);
    if (hit && hit.name === name)
      return hit.origins === origins || sameOrigins(hit.origins, origins) ? hit : { ...hit, origins };
    let body: Uint8Array;
    try {
      body = encodeJson(messageName(typeUrl), json, `${messageName(typeUrl)} ${name}`);
    } catch (err) {
      if (err instanceof ProtoShapeError) throw new ResourceEncodeError(typeUrl, name, origins, err);
      throw err;
    }
    this.encodes++;
    const any = protobuf.Writer.create().uint32(10).string(typeUrl).uint32(18).bytes(body).finish();
    const delta = protobuf.Writer.create()
      .uint32(10)
      .string(version)
      .uint32(18)
      .bytes(any)
      .uint32(26)
      .string(name)
      .finish();
    const entry: EncodedResource = { typeUrl, name, version, any, delta, json, origins };
    this.entries.set(key, entry);
    return entry;
  }

  /**
   * Drops entries no longer used by any of `snapshots` (all the snapshots being served). Entries are only added,
   * so this runs once the cache has grown by a quarter since the last sweep: its cost (a pass over every served
   * resource) is spread over many revisions instead of paid on each.
   */
  sweep(snapshots: () => Iterable<Snapshot>): void {
    if (this.entries.size < this.sizeAfterSweep * 1.25 + 1000) return;
    const live = new Set<string>();
    for (const s of snapshots())
      for (const t of s.types.values()) for (const r of t.resources.values()) live.add(`${r.typeUrl}\0${r.version}`);
    for (const k of this.entries.keys()) if (!live.has(k)) this.entries.delete(k);
    this.sizeAfterSweep = this.entries.size;
  }

  /**
   * Every entry is in use (a new cache that one compile's snapshots just filled): nothing to sweep, and the next
   * sweep waits for growth from here.
   */
  allInUse(): void {
    this.sizeAfterSweep = this.entries.size;
  }

  get size(): number {
    return this.entries.size;
  }
}

function sameOrigins(a: Origin[], b: Origin[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (o, i) =>
        o.file === b[i].file && o.line === b[i].line && o.column === b[i].column && o.revision === b[i].revision,
    )
  );
}
