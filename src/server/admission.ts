/**
 * Stage: server. Admission of new ADS streams, decided after authentication so that clients without a valid token
 * cannot use up the capacity real proxies need (a reconnect storm after a restart must not be starved by a flood):
 * - authenticated streams are charged to the new-stream budget (excess: RESOURCE_EXHAUSTED, proxies back off);
 * - attempts that fail authentication are charged to a budget of their own, which never touches the first one.
 * Refusals are logged at a bounded rate: the first of each kind per interval at once, the rest as one summary line
 * with counts at the end of the interval.
 */
import type { Logger } from '../app/logger.js';

/** A token bucket: `rate` tokens per second, holding at most `rate` (a one-second burst). */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = rate;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.rate, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export class Admission {
  readonly authenticated: TokenBucket;
  readonly unauthenticated: TokenBucket;

  constructor(o: { authenticatedPerSecond: number; unauthenticatedPerSecond: number; now?: () => number }) {
    this.authenticated = new TokenBucket(o.authenticatedPerSecond, o.now);
    this.unauthenticated = new TokenBucket(o.unauthenticatedPerSecond, o.now);
  }

  /** A stream whose credentials verified: may it open now? */
  admitAuthenticated(): boolean {
    return this.authenticated.take();
  }

  /**
   * An attempt that failed authentication: true while within its own budget (refused with its precise code);
   * false in a flood (refused with RESOURCE_EXHAUSTED, so clients back off). It is refused either way.
   */
  chargeUnauthenticated(): boolean {
    return this.unauthenticated.take();
  }
}

/** Distinct refusal kinds tracked per interval; more are counted under "other" (reasons come from clients). */
const MAX_KINDS = 32;

/**
 * Bounded-rate logging of refused streams: the first refusal of each kind in an interval is logged with its details,
 * later ones are only counted and reported in one summary line when the interval ends.
 */
export class RefusalLog {
  private counts = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  /** All refusals since start, by kind (for metrics). */
  readonly totals = new Map<string, number>();

  constructor(
    private readonly log: Logger,
    readonly intervalMs = 10_000,
  ) {}

  refused(kind: string, fields: Record<string, unknown>): void {
    if (!this.counts.has(kind) && this.counts.size >= MAX_KINDS) kind = 'other';
    this.totals.set(kind, (this.totals.get(kind) ?? 0) + 1);
    const n = this.counts.get(kind) ?? 0;
    this.counts.set(kind, n + 1);
    if (n === 0) this.log.warn(`ads stream refused: ${kind}`, fields);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Ends the interval: one summary line if anything beyond the first of a kind was refused. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const counts = this.counts;
    this.counts = new Map();
    const suppressed = [...counts.values()].reduce((a, n) => a + n - 1, 0);
    if (suppressed === 0) return;
    const refused = Object.fromEntries(counts);
    this.log.warn('ads streams refused (summary)', { intervalMs: this.intervalMs, refused, notLogged: suppressed });
  }
}
