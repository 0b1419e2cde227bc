/**
 * Convergence of accepted revisions: when each was accepted and when every connected proxy first held it, observed
 * from the proxy registry's sync events. Recorded in telemetry (chancery_revision_convergence_seconds) and the log,
 * and read by the status API. Depends on the registry only; it never publishes anything.
 */
import type { ProxyRegistry } from '../server/proxy-registry.js';
import type { Logger } from './logger.js';
import type { Telemetry } from './telemetry.js';

export interface ConvergenceEntry {
  acceptedAt: number;
  convergedAt?: number;
}

/** How far the connected proxies are with one revision (status API). */
export interface ConvergenceStatus {
  acceptedAt?: string;
  convergedAt?: string;
  ms?: number;
  connected: number;
  synced: number;
  behind: number;
  rejected: number;
}

export class ConvergenceTracker {
  /** Per accepted revision: when it was accepted and when every connected proxy first held it. */
  readonly entries = new Map<string, ConvergenceEntry>();
  private checkQueued = false;

  constructor(
    private readonly registry: ProxyRegistry,
    /** The revision being served now, if any. */
    private readonly currentRevision: () => string | undefined,
    private readonly telemetry: Telemetry,
    private readonly log: Logger,
  ) {}

  /** A revision was accepted (the first time counts: a re-accepted revision keeps its start). */
  accepted(revision: string): void {
    if (!this.entries.has(revision)) this.entries.set(revision, { acceptedAt: Date.now() });
  }

  /** Checks convergence once per turn of the event loop, however many proxies synced in it. */
  schedule(): void {
    if (this.checkQueued) return;
    this.checkQueued = true;
    setImmediate(() => {
      this.checkQueued = false;
      this.check();
    });
  }

  /** Marks the current revision converged the first time every connected proxy holds it. */
  check(): void {
    const rev = this.currentRevision();
    const entry = rev ? this.entries.get(rev) : undefined;
    if (!rev || !entry || entry.convergedAt !== undefined) return;
    const connected = this.registry.connectedStatuses();
    if (connected.length === 0 || connected.some((p) => p.revision !== rev)) return;
    entry.convergedAt = Date.now();
    this.telemetry.convergence.record((entry.convergedAt - entry.acceptedAt) / 1000);
    const ms = entry.convergedAt - entry.acceptedAt;
    this.log.info('revision converged', { revision: rev, proxies: connected.length, ms });
  }

  /** How far the proxies are with a revision. */
  of(revision: string): ConvergenceStatus {
    const e = this.entries.get(revision);
    const connected = this.registry.all().filter((p) => p.connected);
    const synced = connected.filter((p) => p.revision === revision).length;
    // Rejected: the proxy's last word on some type of this revision was a NACK.
    const rejected = connected.filter((p) =>
      Object.values(p.types).some(
        (t) => t.lastNack?.revision === revision && (!t.acked || t.acked.at <= t.lastNack.at),
      ),
    ).length;
    const iso = (ms: number) => new Date(ms).toISOString();
    return {
      ...(e ? { acceptedAt: iso(e.acceptedAt) } : {}),
      ...(e?.convergedAt ? { convergedAt: iso(e.convergedAt), ms: e.convergedAt - e.acceptedAt } : {}),
      connected: connected.length,
      synced,
      behind: connected.length - synced,
      rejected,
    };
  }
}
