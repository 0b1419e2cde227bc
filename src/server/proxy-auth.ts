/**
 * Stage: server. Who is asking: every ADS stream must carry a per-workload token (gRPC metadata
 * `authorization: Bearer <token>`), an HS256 JWT signed by the control plane whose subject is the node id, with an
 * issue time and an expiry at most a year later. `chancery bootstrap` embeds it; the server checks it when the
 * stream opens and again against the node id of the first request, so a proxy only ever receives its own
 * workload's configuration and secrets. A group token (`chancery bootstrap --group`) names a WorkloadGroup instead
 * and a generation (see group-generations.ts); it lets an instance register names inside that group.
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { readStateFile, restoreRemedy, StateFileError, writeFileAtomic } from '../util/files.js';

const ISSUER = 'chancery';
const AUDIENCE = 'chancery-xds';
/** Group tokens have an audience of their own: neither kind of token is ever accepted as the other. */
const GROUP_AUDIENCE = 'chancery-xds-group';
/** Private claims of a group token: the group (`namespace/name`) and the generation it was issued in. */
const GROUP = 'grp';
const GENERATION = 'gen';
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
    return this.sign({}, AUDIENCE, nodeId, ttlSeconds, now);
  }

  /** Issues a group token: any name inside `group` (`namespace/name`) may register with it, in `generation`. */
  async issueGroup(group: string, generation: number, ttlSeconds: number, now = Date.now()): Promise<string> {
    return this.sign({ [GROUP]: group, [GENERATION]: generation }, GROUP_AUDIENCE, `group:${group}`, ttlSeconds, now);
  }

  private async sign(claims: JWTPayload, audience: string, sub: string, ttlSeconds: number, now: number) {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
      const days = MAX_TOKEN_TTL_SECONDS / 86_400;
      throw new RangeError(`token lifetime must be 1 s to ${MAX_TOKEN_TTL_SECONDS} s (${days} days)`);
    }
    // iat has whole seconds; the milliseconds tell a token issued right after a removal from one issued before it.
    return new SignJWT({ ...claims, [ISSUED_MS]: now })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(audience)
      .setSubject(sub)
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
    const v = await this.check(token, AUDIENCE, now);
    if (!v.ok) return v;
    const removed = removedAt(v.sub);
    if (removed !== undefined && v.issuedMs <= removed) {
      return { ok: false, reason: 'token issued before its workload was removed' };
    }
    return { ok: true, nodeId: v.sub };
  }

  /**
   * The group a group token was issued for, or why it is not acceptable: all of verify's checks, plus a group
   * claim that agrees with the subject and a generation equal to the group's current one (`generationOf`).
   */
  async verifyGroup(
    token: string,
    now: number,
    generationOf: (group: string) => number,
  ): Promise<{ ok: true; group: string; generation: number } | { ok: false; reason: string }> {
    const v = await this.check(token, GROUP_AUDIENCE, now);
    if (!v.ok) return v;
    const group = v.payload[GROUP];
    const generation = v.payload[GENERATION];
    const named = typeof group === 'string' && v.sub === `group:${group}`;
    if (!named) return { ok: false, reason: 'group token has no group' };
    if (!Number.isInteger(generation)) return { ok: false, reason: 'group token has no generation' };
    if (generation !== generationOf(group)) return { ok: false, reason: 'group token revoked' };
    return { ok: true, group, generation: generation as number };
  }

  /** Whether a token is a group token, from its unverified payload (only to choose which checks to run). */
  static isGroupToken(token: string): boolean {
    try {
      const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as JWTPayload;
      return payload.aud === GROUP_AUDIENCE;
    } catch {
      return false;
    }
  }

  /** The checks every token gets: signature, issuer, audience, expiry, required claims, issue time, lifetime. */
  private async check(
    token: string,
    audience: string,
    now: number,
  ): Promise<{ ok: true; sub: string; issuedMs: number; payload: JWTPayload } | { ok: false; reason: string }> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        issuer: ISSUER,
        audience,
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
    const issuedMs = typeof ms === 'number' && Math.floor(ms / 1000) === iat ? ms : iat * 1000;
    return { ok: true, sub, issuedMs, payload };
  }
}

/** Reads `authorization: Bearer <token>` from gRPC metadata values. */
export function bearerToken(values: unknown[]): string | undefined {
  const v = values.find((x) => typeof x === 'string');
  const m = typeof v === 'string' ? /^Bearer\s+(\S+)$/i.exec(v) : null;
  return m?.[1];
}
