/**
 * Stage: server. Who is asking: every ADS stream must carry a per-workload token (gRPC metadata
 * `authorization: Bearer <token>`), an HS256 JWT signed by the control plane whose subject is the node id, with an
 * expiry. `chancery bootstrap` embeds it; the server checks it when the stream opens and again against the node id
 * of the first request, so a proxy only ever receives its own workload's configuration and secrets.
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { errors, jwtVerify, SignJWT } from 'jose';
import { readStateFile, restoreRemedy, StateFileError, writeFileAtomic } from '../util/files.js';

const ISSUER = 'chancery';
const AUDIENCE = 'chancery-xds';
/** HS256 keys shorter than the hash are weak (RFC 7518 section 3.2 requires at least 256 bits). */
const MIN_KEY_BYTES = 32;

export class ProxyTokens {
  /** A KeyObject, not raw bytes: jose would import raw bytes into WebCrypto on every verification. */
  private constructor(private readonly key: KeyObject) {}

  /**
   * Loads the signing key from the state directory. Only `create` (a first start) makes a new one: a missing key
   * over existing state would silently invalidate every token in every bootstrap, so that is an error naming the file.
   */
  static open(stateDir: string, o: { create?: boolean } = {}): ProxyTokens {
    const file = path.join(stateDir, 'xds-token.key');
    if (!existsSync(file) && o.create !== false) {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      writeFileAtomic(file, randomBytes(MIN_KEY_BYTES).toString('base64') + '\n');
    }
    const text = readStateFile(file, restoreRemedy('every Envoy bootstrap carries a token signed with it')).trim();
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
      throw new StateFileError(file, 'is not base64 (truncated or corrupt?)');
    }
    const key = Buffer.from(text, 'base64');
    if (key.length < MIN_KEY_BYTES) {
      const problem = `the key is ${key.length} bytes; HS256 needs at least ${MIN_KEY_BYTES} (truncated or weak)`;
      throw new StateFileError(file, problem);
    }
    return new ProxyTokens(createSecretKey(key));
  }

  issue(nodeId: string, ttlSeconds: number, now = Date.now()): Promise<string> {
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(nodeId)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(now / 1000) + ttlSeconds)
      .sign(this.key);
  }

  /** The node id the token was issued for, or a reason it is not acceptable (never echoed to the client). */
  async verify(token: string, now = Date.now()): Promise<{ ok: true; nodeId: string } | { ok: false; reason: string }> {
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], currentDate: new Date(now) });
      if (typeof payload.sub !== 'string' || payload.sub === '') return { ok: false, reason: 'token has no subject' };
      return { ok: true, nodeId: payload.sub };
    } catch (err) {
      if (err instanceof errors.JWTExpired) return { ok: false, reason: 'token expired' };
      return { ok: false, reason: `invalid token (${(err as Error).name})` };
    }
  }
}

/** Reads `authorization: Bearer <token>` from gRPC metadata values. */
export function bearerToken(values: unknown[]): string | undefined {
  const v = values.find((x) => typeof x === 'string');
  const m = typeof v === 'string' ? /^Bearer\s+(\S+)$/i.exec(v) : null;
  return m?.[1];
}
