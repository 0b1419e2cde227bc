/**
 * Stage: server. Who is asking: every ADS stream must carry a per-workload token (gRPC metadata
 * `authorization: Bearer <token>`), an HS256 JWT signed by the control plane whose subject is the node id, with an
 * issue time and an expiry at most a year later. `chancery bootstrap` embeds it; the server checks it when the
 * stream opens and again against the node id of the first request, so a proxy only ever receives its own
 * workload's configuration and secrets.
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { readStateFile, restoreRemedy, StateFileError, writeFileAtomic } from '../util/files.js';

const ISSUER = 'chancery';
const AUDIENCE = 'chancery-xds';
/** HS256 keys shorter than the hash are weak (RFC 7518 section 3.2 requires at least 256 bits). */
const MIN_KEY_BYTES = 32;
/** The longest a proxy token may live: `chancery bootstrap --token-ttl` refuses more, the server such tokens. */
export const MAX_TOKEN_TTL_SECONDS = 365 * 86_400;
/** How far in the future a token's `iat` may be (clocks of the issuing host and the server differ a little). */
export const MAX_CLOCK_SKEW_SECONDS = 60;
/** Private claim: the issue time in milliseconds (must agree with `iat`). */
const ISSUED_MS = 'iat_ms';

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

  /** Issues a token for `nodeId`; refuses a lifetime beyond MAX_TOKEN_TTL_SECONDS (a leaked token must expire). */
  async issue(nodeId: string, ttlSeconds: number, now = Date.now()): Promise<string> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
      const days = MAX_TOKEN_TTL_SECONDS / 86_400;
      throw new RangeError(`token lifetime must be 1 s to ${MAX_TOKEN_TTL_SECONDS} s (${days} days)`);
    }
    // iat has whole seconds; the milliseconds tell a token issued right after a removal from one issued before it.
    return new SignJWT({ [ISSUED_MS]: now })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(nodeId)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(now / 1000) + ttlSeconds)
      .sign(this.key);
  }

  /**
   * The node id the token was issued for, or a reason it is not acceptable (never echoed to the client). Beyond the
   * signature, issuer, audience and expiry: `exp`, `iat` and `sub` are required, `iat` may not be in the future (up
   * to MAX_CLOCK_SKEW_SECONDS), the lifetime may not exceed MAX_TOKEN_TTL_SECONDS, and a token issued no later than
   * its workload's removal (`removedAt`, ms) is refused, so a removed workload's old tokens stay dead if it returns.
   */
  async verify(
    token: string,
    now = Date.now(),
    removedAt: (nodeId: string) => number | undefined = () => undefined,
  ): Promise<{ ok: true; nodeId: string } | { ok: false; reason: string }> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ['HS256'],
        requiredClaims: ['exp', 'iat', 'sub'],
        currentDate: new Date(now),
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) return { ok: false, reason: 'token expired' };
      if (err instanceof errors.JWTClaimValidationFailed) {
        return { ok: false, reason: `token claim "${err.claim}" ${err.reason}` };
      }
      return { ok: false, reason: `invalid token (${(err as Error).name})` };
    }
    const { sub, iat, exp } = payload as { sub: unknown; iat: unknown; exp: unknown };
    const ms = payload[ISSUED_MS];
    if (typeof sub !== 'string' || sub === '') return { ok: false, reason: 'token has no subject' };
    if (typeof iat !== 'number' || typeof exp !== 'number') return { ok: false, reason: 'token times are not numbers' };
    if (iat > now / 1000 + MAX_CLOCK_SKEW_SECONDS) return { ok: false, reason: 'token issued in the future' };
    if (exp - iat > MAX_TOKEN_TTL_SECONDS) return { ok: false, reason: 'token lifetime exceeds the maximum' };
    const removed = removedAt(sub);
    const issuedMs = typeof ms === 'number' && Math.floor(ms / 1000) === iat ? ms : iat * 1000;
    if (removed !== undefined && issuedMs <= removed) {
      return { ok: false, reason: 'token issued before its workload was removed' };
    }
    return { ok: true, nodeId: sub };
  }
}

/** Reads `authorization: Bearer <token>` from gRPC metadata values. */
export function bearerToken(values: unknown[]): string | undefined {
  const v = values.find((x) => typeof x === 'string');
  const m = typeof v === 'string' ? /^Bearer\s+(\S+)$/i.exec(v) : null;
  return m?.[1];
}
