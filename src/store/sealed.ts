/**
 * Store: private keys never reach the shared store in the clear. A value is sealed with AES-256-GCM under a key
 * derived (HKDF-SHA256) from the store key file every replica is given, with the store key it is written under as
 * associated data: a sealed value copied to another key does not open there. Sealed text: `v1.<base64 iv|tag|data>`.
 * Depends on node:crypto only.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** The shortest store key file accepted: 256 bits of key material. */
export const MIN_STORE_KEY_BYTES = 32;
const PREFIX = 'v1.';

export class StoreKeyError extends Error {}

export class Sealer {
  private constructor(private readonly key: Buffer) {}

  /** Reads the store key file (32 or more random bytes, e.g. `head -c 32 /dev/urandom > FILE`). */
  static fromFile(file: string): Sealer {
    let raw: Buffer;
    try {
      raw = readFileSync(file);
    } catch (err) {
      throw new StoreKeyError(`--store-key ${file}: cannot read it (${(err as Error).message})`);
    }
    return Sealer.fromBytes(raw, file);
  }

  static fromBytes(raw: Buffer, name = 'the store key'): Sealer {
    if (raw.length < MIN_STORE_KEY_BYTES) {
      const why = `${raw.length} bytes; it needs at least ${MIN_STORE_KEY_BYTES} random bytes`;
      throw new StoreKeyError(`${name}: ${why} (create one with: chancery store-key FILE)`);
    }
    const key = Buffer.from(hkdfSync('sha256', raw, 'chancery-store', 'sealed values v1', 32));
    return new Sealer(key);
  }

  seal(storeKey: string, plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(storeKey));
    const data = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return PREFIX + Buffer.concat([iv, c.getAuthTag(), data]).toString('base64');
  }

  /** The plain text, or undefined when the value was sealed under another key file or for another store key. */
  open(storeKey: string, sealed: string): string | undefined {
    if (!sealed.startsWith(PREFIX)) return undefined;
    const buf = Buffer.from(sealed.slice(PREFIX.length), 'base64');
    if (buf.length < 28) return undefined;
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, buf.subarray(0, 12));
      d.setAAD(Buffer.from(storeKey));
      d.setAuthTag(buf.subarray(12, 28));
      return Buffer.concat([d.update(buf.subarray(28)), d.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}
