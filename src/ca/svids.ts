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

/**
 * Where certificates come from when several replicas share them (store/shared-svids.ts): the shared current one,
 * or one issued now and stored (first writer wins). `replacing`: the serial being rotated away from.
 */
export interface SvidSource {
  obtain(identity: string, ttlMs: number, replacing?: string): Promise<IssuedCertificate>;
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
    private readonly source?: SvidSource,
  ) {}

  /** The settings in force (the policy's lifetime and rotation fraction). */
  get settingsNow(): SvidSettings {
    return this.settings;
  }

  get(identity: string): IssuedCertificate | undefined {
    return this.svids.get(identity)?.cert;
  }

  /** Returns whether the settings changed; the caller then re-issues, so lifetimes follow the policy at once. */
  configure(settings: SvidSettings): boolean {
    const s = this.settings;
    this.settings = settings;
    return (
      s.ttlMs !== settings.ttlMs ||
      s.rotateAtFraction !== settings.rotateAtFraction ||
      s.jitterFraction !== settings.jitterFraction
    );
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

  /** The certificates not from `signer` (replicas: another replica switched the signer), re-obtained now. */
  refreshSigner(signer: string): Promise<void> {
    return this.reissue([...this.svids].filter(([, e]) => e.cert.signerSerial !== signer).map(([id]) => id));
  }

  /** Re-issues the given identities' certificates now and reports them as rotated. */
  async reissue(identities: string[]): Promise<void> {
    const ids = identities.filter((id) => this.svids.has(id)).sort();
    if (ids.length === 0) return;
    await Promise.all(ids.map((id) => this.issueFor(id, this.svids.get(id)?.cert.serial)));
    this.onRotated(ids);
  }

  /**
   * Another replica stored a new certificate for an identity in use here: serve it (and report it rotated).
   * Its rotation time follows from the certificate alone, so every replica agrees on it.
   */
  adopt(identity: string, cert: IssuedCertificate): void {
    const held = this.svids.get(identity);
    if (!held || held.cert.serial === cert.serial || cert.notBefore < held.cert.notBefore) return;
    this.schedule(identity, cert);
    this.onRotated([identity]);
  }

  private async issueFor(identity: string, replacing?: string): Promise<void> {
    if (this.source) {
      this.schedule(identity, await this.source.obtain(identity, this.settings.ttlMs, replacing));
      return;
    }
    const cert = await this.authority.issue(identity, this.settings.ttlMs);
    this.issued++;
    const life = cert.notAfter - this.clock.now();
    const base = life * this.settings.rotateAtFraction;
    const delay = Math.max(1_000, base * (1 + this.settings.jitterFraction * (2 * this.random() - 1)));
    this.set(identity, cert, delay);
  }

  /** A shared certificate: rotated at a time computed from it (jitter from its serial), the same on every replica. */
  private schedule(identity: string, cert: IssuedCertificate): void {
    this.set(identity, cert, Math.max(1_000, sharedRotateAt(cert, this.settings) - this.clock.now()));
  }

  private set(identity: string, cert: IssuedCertificate, delay: number): void {
    this.svids.get(identity)?.cancel();
    const cancel = this.clock.after(delay, () => {
      void this.rotate(identity);
    });
    this.svids.set(identity, { cert, rotateAt: this.clock.now() + delay, cancel });
  }

  private async rotate(identity: string): Promise<void> {
    const held = this.svids.get(identity);
    if (!held) return;
    await this.issueFor(identity, held.cert.serial);
    this.onRotated([identity]);
  }

  status(): {
    identity: string;
    serial: string;
    notBefore: string;
    notAfter: string;
    rotateAt: string;
    signer: string;
  }[] {
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

/** When a shared certificate is due for rotation: at the fraction of its life, +/- jitter drawn from its serial. */
export function sharedRotateAt(cert: IssuedCertificate, s: SvidSettings): number {
  const issued = cert.notBefore + 60_000; // issue() backdates notBefore by a minute
  const u = parseInt(cert.serial.slice(-8), 16) / 0xffffffff || 0.5;
  return issued + (cert.notAfter - issued) * s.rotateAtFraction * (1 + s.jitterFraction * (2 * u - 1));
}
