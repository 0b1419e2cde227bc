/**
 * Stage: ca. Keeps one current workload certificate (SVID) per SPIFFE identity in use, and re-issues each at a
 * fraction of its lifetime, with jitter so a fleet issued together does not rotate together. Only the identities
 * that changed are reported, so only their proxies receive new secrets.
 */
import type { Authority, IssuedCertificate } from './authority.js';
import type { Clock } from './clock.js';

export interface SvidSettings {
  ttlMs: number;
  /** Fraction of the lifetime after which the certificate is re-issued (e.g. 0.5). */
  rotateAtFraction: number;
  /** +/- this fraction of the rotation delay, at random. */
  jitterFraction: number;
}

interface Entry {
  cert: IssuedCertificate;
  rotateAt: number;
  cancel: () => void;
}

export class SvidManager {
  private readonly svids = new Map<string, Entry>();
  issued = 0;

  constructor(
    private readonly authority: Authority,
    private readonly clock: Clock,
    private settings: SvidSettings,
    private readonly onRotated: (identities: string[]) => void,
    private readonly random: () => number = Math.random,
  ) {}

  get(identity: string): IssuedCertificate | undefined {
    return this.svids.get(identity)?.cert;
  }

  /** Returns whether the settings changed; the caller then re-issues, so lifetimes follow the policy at once. */
  configure(settings: SvidSettings): boolean {
    const s = this.settings;
    this.settings = settings;
    return s.ttlMs !== settings.ttlMs || s.rotateAtFraction !== settings.rotateAtFraction || s.jitterFraction !== settings.jitterFraction;
  }

  /** Issues certificates for identities that have none, forgets the ones no longer used. Returns the new ones. */
  async sync(identities: Iterable<string>): Promise<string[]> {
    const wanted = new Set(identities);
    for (const [id, e] of this.svids) {
      if (!wanted.has(id)) {
        e.cancel();
        this.svids.delete(id);
      }
    }
    const missing = [...wanted].filter((id) => !this.svids.has(id)).sort();
    await Promise.all(missing.map((id) => this.issueFor(id)));
    return missing;
  }

  /** Re-issues every certificate now (after the signer changed in a root rotation). */
  reissueAll(): Promise<void> {
    return this.reissue([...this.svids.keys()]);
  }

  /** Re-issues the given identities' certificates now and reports them as rotated. */
  async reissue(identities: string[]): Promise<void> {
    const ids = identities.filter((id) => this.svids.has(id)).sort();
    if (ids.length === 0) return;
    await Promise.all(ids.map((id) => this.issueFor(id)));
    this.onRotated(ids);
  }

  private async issueFor(identity: string): Promise<void> {
    const cert = await this.authority.issue(identity, this.settings.ttlMs);
    this.issued++;
    const life = cert.notAfter - this.clock.now();
    const base = life * this.settings.rotateAtFraction;
    const delay = Math.max(1_000, base * (1 + this.settings.jitterFraction * (2 * this.random() - 1)));
    this.svids.get(identity)?.cancel();
    const cancel = this.clock.after(delay, () => {
      void this.rotate(identity);
    });
    this.svids.set(identity, { cert, rotateAt: this.clock.now() + delay, cancel });
  }

  private async rotate(identity: string): Promise<void> {
    if (!this.svids.has(identity)) return;
    await this.issueFor(identity);
    this.onRotated([identity]);
  }

  status(): { identity: string; serial: string; notBefore: string; notAfter: string; rotateAt: string; signer: string }[] {
    return [...this.svids.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([identity, e]) => ({
        identity,
        serial: e.cert.serial,
        notBefore: new Date(e.cert.notBefore).toISOString(),
        notAfter: new Date(e.cert.notAfter).toISOString(),
        rotateAt: new Date(e.rotateAt).toISOString(),
        signer: e.cert.signerSerial,
      }));
  }

  stop(): void {
    for (const e of this.svids.values()) e.cancel();
  }
}
