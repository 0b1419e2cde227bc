/**
 * Stage: ca. The certificate authority: the signing certificate and key, and the trust bundle (every root a proxy
 * must trust, more than one during a root rotation). On first start an ECDSA P-256 root is generated into the state
 * directory (owner-only permissions); or the user supplies a root or an intermediate (certificate, key, chain).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Clock } from './clock.js';
import { KeyPool } from './key-pool.js';
import {
  createRootCertificate,
  describeCertificate,
  exportPrivateKeyPem,
  fromPem,
  generateKeyPair,
  importPrivateKeyPem,
  issueLeaf,
  signerFrom,
  toPem,
  type Signer,
} from './x509.js';

export interface IssuedCertificate {
  spiffeId: string;
  /** Leaf followed by any intermediates, PEM. */
  chainPem: string;
  keyPem: string;
  notBefore: number;
  notAfter: number;
  serial: string;
  /** Which signer issued it (for root rotation bookkeeping). */
  signerSerial: string;
}

export interface CaFiles {
  certFile: string;
  keyFile: string;
  /** Intermediates and root above `certFile`, PEM; the last certificate is the root. */
  chainFile?: string;
}

const ROOT_LIFETIME_MS = 10 * 365 * 24 * 3_600_000;

export class Authority {
  private readonly keys = new KeyPool();

  private constructor(
    private signer: Signer,
    /** Certificates between the signer and the root (PEM), sent with every leaf. */
    private intermediatesPem: string,
    /** Root certificates (PEM) in the trust bundle. */
    private roots: string[],
    private readonly clock: Clock,
    private readonly stateDir?: string,
  ) {}

  /** Loads the CA from user files, or from the state directory, or creates a new root there. */
  static async open(o: { stateDir: string; clock: Clock; files?: CaFiles }): Promise<Authority> {
    if (o.files) {
      const certPem = readFileSync(o.files.certFile, 'utf8');
      const [der] = fromPem(certPem, 'CERTIFICATE');
      if (!der) throw new Error(`${o.files.certFile}: no certificate found`);
      if (!describeCertificate(der).isCa) throw new Error(`${o.files.certFile}: not a CA certificate (basicConstraints cA is not set)`);
      const key = importPrivateKeyPem(readFileSync(o.files.keyFile, 'utf8'));
      const chain = o.files.chainFile ? fromPem(readFileSync(o.files.chainFile, 'utf8'), 'CERTIFICATE') : [];
      const rootDer = chain.length > 0 ? chain[chain.length - 1] : der;
      const intermediates = chain.slice(0, -1);
      return new Authority(
        signerFrom(der, key),
        [der, ...intermediates].filter((d) => d !== rootDer).map((d) => toPem(d, 'CERTIFICATE')).join(''),
        [toPem(rootDer, 'CERTIFICATE')],
        o.clock,
      );
    }
    const dir = path.join(o.stateDir, 'ca');
    const certFile = path.join(dir, 'root-cert.pem');
    const keyFile = path.join(dir, 'root-key.pem');
    if (existsSync(certFile) && existsSync(keyFile)) {
      const der = fromPem(readFileSync(certFile, 'utf8'), 'CERTIFICATE')[0];
      const key = importPrivateKeyPem(readFileSync(keyFile, 'utf8'));
      const bundleFile = path.join(dir, 'trust-bundle.pem');
      const roots = existsSync(bundleFile) ? splitPem(readFileSync(bundleFile, 'utf8')) : [toPem(der, 'CERTIFICATE')];
      return new Authority(signerFrom(der, key), '', roots, o.clock, o.stateDir);
    }
    const { der, keyPem } = newRoot(o.clock);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(keyFile, keyPem, { mode: 0o600 });
    chmodSync(keyFile, 0o600);
    writeFileSync(certFile, toPem(der, 'CERTIFICATE'));
    return new Authority(signerFrom(der, importPrivateKeyPem(keyPem)), '', [toPem(der, 'CERTIFICATE')], o.clock, o.stateDir);
  }

  /** The trust bundle: every root proxies must accept, PEM. */
  trustBundlePem(): string {
    return this.roots.join('');
  }

  signerInfo(): { serial: string; subject: string; notAfter: string } {
    const d = describeCertificate(this.signer.der);
    return { serial: d.serial, subject: d.subject, notAfter: d.notAfter.toISOString() };
  }

  get signerSerial(): string {
    return this.signer.serial;
  }

  /** Issues a fresh key and certificate for a SPIFFE id, valid for `ttlMs` (backdated 1 min for clock skew). */
  async issue(spiffeId: string, ttlMs: number): Promise<IssuedCertificate> {
    const now = this.clock.now();
    const keys = await this.keys.take();
    const notBefore = now - 60_000;
    const notAfter = now + ttlMs;
    const { der, serial } = issueLeaf(this.signer, spiffeId, keys.spki, new Date(notBefore), new Date(notAfter));
    return {
      spiffeId,
      chainPem: toPem(der, 'CERTIFICATE') + this.intermediatesPem,
      keyPem: keys.keyPem,
      notBefore,
      notAfter,
      serial,
      signerSerial: this.signer.serial,
    };
  }

  // ---- root rotation, in three steps the caller gates on proxies having ACKed the previous one ----

  private nextRoot?: { signer: Signer; pem: string; keyPem: string };

  /** Step 1: create the next root and add it to the trust bundle (signing is unchanged). */
  async beginRootRotation(): Promise<void> {
    if (this.intermediatesPem) throw new Error('root rotation is for a self-managed root; rotate a user-supplied CA by restarting with new files');
    const { der, keyPem } = newRoot(this.clock);
    this.nextRoot = { signer: signerFrom(der, importPrivateKeyPem(keyPem)), pem: toPem(der, 'CERTIFICATE'), keyPem };
    this.roots = [...this.roots, this.nextRoot.pem];
    this.persist();
  }

  /** Step 2: sign with the new root from now on (the caller then re-issues every workload certificate). */
  switchSigner(): void {
    if (!this.nextRoot) throw new Error('no root rotation in progress');
    this.signer = this.nextRoot.signer;
    this.persist(this.nextRoot);
  }

  /** Step 3: drop every root but the current signer's from the trust bundle. */
  finishRootRotation(): void {
    const current = toPem(this.signer.der, 'CERTIFICATE');
    this.roots = [current];
    this.nextRoot = undefined;
    this.persist();
  }

  private persist(newSigner?: { pem: string; keyPem: string }): void {
    if (!this.stateDir) return;
    const dir = path.join(this.stateDir, 'ca');
    if (newSigner) {
      writeFileSync(path.join(dir, 'root-key.pem'), newSigner.keyPem, { mode: 0o600 });
      writeFileSync(path.join(dir, 'root-cert.pem'), newSigner.pem);
    }
    writeFileSync(path.join(dir, 'trust-bundle.pem'), this.roots.join(''));
  }
}

function newRoot(clock: Clock): { der: Uint8Array; keyPem: string } {
  const keys = generateKeyPair();
  const now = clock.now();
  const der = createRootCertificate(keys, 'Chancery Root CA', new Date(now - 60_000), new Date(now + ROOT_LIFETIME_MS));
  return { der, keyPem: exportPrivateKeyPem(keys.privateKey) };
}

function splitPem(pem: string): string[] {
  return fromPem(pem, 'CERTIFICATE').map((d) => toPem(d, 'CERTIFICATE'));
}
