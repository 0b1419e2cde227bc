/**
 * Stage: ir. The dependency index of a compile result: for each dependency key, its value in the latest model and
 * the proxies that depend on it (see dependencies.ts). An index is never changed once built: a rejected revision
 * must not disturb the result it keeps, and several compiles may start from one result. So an update copies what
 * it changes; keys are spread over chunks by a hash of the key, and only the chunks holding a key whose value or
 * dependents changed are copied (a revision that recompiles a few proxies touches a few keys, not ~10,000).
 */

/** Key -> value and dependents. */
export interface IndexEntry {
  readonly value: string;
  readonly dependents: ReadonlySet<string>;
}

export interface DependencyIndex {
  readonly chunks: readonly ReadonlyMap<string, IndexEntry>[];
}

/** Key -> value, for the model a proxy was compiled from. */
export type Dependencies = ReadonlyMap<string, string>;

const CHUNKS = 256;

export function emptyIndex(): DependencyIndex {
  return { chunks: Array.from({ length: CHUNKS }, () => new Map<string, IndexEntry>()) };
}

function chunkNumber(key: string): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (Math.imul(h, 31) + key.charCodeAt(i)) | 0;
  return (h >>> 0) % CHUNKS;
}

/** Every key of the index with its entry. */
export function* indexEntries(index: DependencyIndex): Generator<[string, IndexEntry]> {
  for (const chunk of index.chunks) yield* chunk;
}

/**
 * The index after a compile: `before` with the proxies in `changed` (recompiled: their new dependencies; removed:
 * none) updated. A key a recompiled proxy read before and reads now, with the same value, needs no change: the
 * proxy is already among its dependents, and the value is the one every dependent recorded.
 */
export function updatedIndex(
  before: DependencyIndex | undefined,
  changed: ReadonlyMap<string, { old?: Dependencies; now?: Dependencies }>,
): DependencyIndex {
  const chunks = [...(before ?? emptyIndex()).chunks];
  const ownChunks = new Set<number>(); // copied by this update
  const ownEntries = new Map<string, { value: string; dependents: Set<string> }>(); // likewise
  const chunkOf = (k: string): Map<string, IndexEntry> => {
    const i = chunkNumber(k);
    if (!ownChunks.has(i)) {
      ownChunks.add(i);
      chunks[i] = new Map(chunks[i]);
    }
    return chunks[i] as Map<string, IndexEntry>;
  };
  const entryOf = (k: string) => {
    let e = ownEntries.get(k);
    if (!e) {
      const chunk = chunkOf(k);
      const was = chunk.get(k);
      e = { value: was?.value ?? '', dependents: new Set(was?.dependents) };
      ownEntries.set(k, e);
      chunk.set(k, e);
    }
    return e;
  };
  for (const [id, { old, now }] of changed) {
    for (const k of old?.keys() ?? []) {
      if (now?.has(k)) continue;
      const e = entryOf(k);
      e.dependents.delete(id);
      if (e.dependents.size === 0) {
        chunkOf(k).delete(k);
        ownEntries.delete(k);
      }
    }
    for (const [k, v] of now ?? []) {
      if (old?.get(k) === v) continue;
      const e = entryOf(k);
      e.dependents.add(id);
      e.value = v;
    }
  }
  return { chunks };
}
