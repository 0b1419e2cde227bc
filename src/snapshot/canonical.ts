/**
 * Stage: snapshot. Canonical JSON (sorted keys) and content hashes: the basis of every version Chancery sends.
 * Same content -> same hash, on any replica, after any restart.
 */
import { createHash } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'));
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** 16 hex digits (64 bits) of SHA-256: collisions are not a practical concern at mesh scale. */
export function contentHash(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 16);
}

/** Version of a set of resources: hash over the sorted `name:version` pairs. */
export function setVersion(entries: Iterable<{ name: string; version: string }>): string {
  const parts = [...entries].map((e) => `${e.name}\0${e.version}`).sort();
  return contentHash(parts.join('\n'));
}
