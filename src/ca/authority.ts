/**
 * Stage: ca. The certificate authority for workloads: the signing certificate and key, and the trust bundle (every
 * root a proxy must trust, more than one during a root rotation). On the first start an ECDSA P-256 root is
 * generated into the state directory (owner-only permissions); or the user supplies a root or an intermediate
 * (certificate, key, chain). Loading refuses, naming the file, anything it cannot vouch for: a missing half of the
 * root (never replaced by a new one: every workload trusts the old), a key that does not match its certificate, an
 * empty bundle or one without the signing root. The control plane's own identity is reserved: it is never issued
 * here (the xDS server's certificate comes from the separate xDS CA, see xds-ca.ts).
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { readStateFile, restoreRemedy, StateFileError, writeFileAtomic } from '../util/files.js';
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

/** What to do when a CA file of the state directory is gone. */
const LOST_CA_REMEDY =
  restoreRemedy('every workload certificate and proxy trust bundle comes from this CA') +
  '; if this control plane signs with your own CA, pass --ca-cert and --ca-key';

export class Authority {
  private readonly keys = new KeyPool();
  /** SPIFFE ids this CA never issues (the control plane's own). */
  private reserved = new Set<string>();

  private constructor(
    private signer: Signer,
    /** Certificates between the signer and the root (PEM), sent with every leaf. */
    private intermediatesPem: string,
    /** Root certificates (PEM) in the trust bundle. */
    private roots: string[],
    private readonly clock: Clock,
    private readonly stateDir?: string,
  ) {}

  /**
   * Loads the CA from user files, or from the state directory, or creates a new root there. `create: false` (the
   * state directory already holds other state) refuses to create one; a half-present root is always refused.
   */
  static async open(o: { stateDir: string; clock: Clock; files?: CaFiles; create?: boolean }): Promise<Authority> {
    if (o.files) return Authority.fromFiles(o.files, o.clock);
    const dir = path.join(o.stateDir, 'ca');
    const certFile = path.join(dir, 'root-cert.pem');
    const keyFile = path.join(dir, 'root-key.pem');
    const bundleFile = path.join(dir, 'trust-bundle.pem');
    const present = [certFile, keyFile].filter((f) => existsSync(f));
    if (present.length > 0 || o.create === false) {
      const signer = loadSigner(certFile, keyFile, LOST_CA_REMEDY, (key) => resumeSwitch(bundleFile, certFile, key));
      const root = toPem(signer.der, 'CERTIFICATE');
      const roots = existsSync(bundleFile) ? loadBundle(bundleFile, signer.der) : [root];
      return new Authority(signer, '', roots, o.clock, o.stateDir);
    }
    const { der, keyPem } = newRoot(o.clock);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(keyFile, keyPem);
    writeFileAtomic(certFile, toPem(der, 'CERTIFICATE'));
    writeFileAtomic(bundleFile, toPem(der, 'CERTIFICATE'));
    return new Authority(
      signerFrom(der, importPrivateKeyPem(keyPem)),
      '',
      [toPem(der, 'CERTIFICATE')],
      o.clock,
      o.stateDir,
    );
  }

  private static fromFiles(files: CaFiles, clock: Clock): Authority {
    const signer = loadSigner(files.certFile, files.keyFile);
    const der = signer.der;
    const chain = files.chainFile ? certificates(files.chainFile) : [];
    if (files.chainFile && chain.length === 0) throw new StateFileError(files.chainFile, 'holds no PEM certificate');
    const rootDer = chain.length > 0 ? chain[chain.length - 1] : der;
    const intermediates = chain.slice(0, -1);
    return new Authority(
      signer,
      [der, ...intermediates]
        .filter((d) => d !== rootDer)
        .map((d) => toPem(d, 'CERTIFICATE'))
        .join(''),
      [toPem(rootDer, 'CERTIFICATE')],
      clock,
    );
  }

  /** Refuses to issue these SPIFFE ids from now on (replacing the previous set). */
  reserve(ids: Iterable<string>): void {
    this.reserved = new Set(ids);
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
    if (this.reserved.has(spiffeId)) {
      throw new Error(`${spiffeId} is reserved for the control plane; it is never issued to a workload`);
    }
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

  /**
   * Replicas: takes the signer and trust bundle that another replica's rotation step left in the state directory
   * (store/shared-trust.ts wrote them there). Returns whether the signer changed.
   */
  async reload(): Promise<boolean> {
    if (!this.stateDir) return false;
    const fresh = await Authority.open({ stateDir: this.stateDir, clock: this.clock, create: false });
    const switched = fresh.signer.serial !== this.signer.serial;
    this.signer = fresh.signer;
    this.roots = fresh.roots;
    return switched;
  }

  // ---- root rotation, in three steps the caller gates on proxies having ACKed the previous one ----

  private nextRoot?: { signer: Signer; pem: string; keyPem: string };

  /** Step 1: create the next root and add it to the trust bundle (signing is unchanged). */
  async beginRootRotation(): Promise<void> {
    if (this.intermediatesPem)
      throw new Error(
        'root rotation is for a self-managed root; rotate a user-supplied CA by restarting with new files',
      );
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
    // Bundle first: whenever the key and certificate change, the bundle on disk already holds the new root.
    writeFileAtomic(path.join(dir, 'trust-bundle.pem'), this.roots.join(''));
    if (newSigner) {
      writeFileAtomic(path.join(dir, 'root-key.pem'), newSigner.keyPem);
      writeFileAtomic(path.join(dir, 'root-cert.pem'), newSigner.pem);
    }
  }
}

function newRoot(clock: Clock): { der: Uint8Array; keyPem: string } {
  const keys = generateKeyPair();
  const now = clock.now();
  const der = createRootCertificate(keys, 'Chancery Root CA', new Date(now - 60_000), new Date(now + ROOT_LIFETIME_MS));
  return { der, keyPem: exportPrivateKeyPem(keys.privateKey) };
}

/** Every certificate of a PEM file; a block that does not parse is an error naming the file. */
export function certificates(file: string, missing?: string): Uint8Array[] {
  const text = readStateFile(file, missing);
  const ders = fromPem(text, 'CERTIFICATE');
  const begun = text.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
  if (begun !== ders.length) throw new StateFileError(file, 'holds a truncated certificate (a BEGIN without its END)');
  ders.forEach((d, i) => {
    try {
      new X509Certificate(d);
    } catch (err) {
      const why = (err as Error).message;
      throw new StateFileError(file, `certificate ${i + 1} does not parse (${why}); truncated or corrupt`);
    }
  });
  return ders;
}

/** A private key file (PKCS#8 ECDSA P-256); a failure names the file. */
export function privateKey(file: string, pem: string): KeyObject {
  try {
    return importPrivateKeyPem(pem);
  } catch (err) {
    throw new StateFileError(file, `not a valid private key (${(err as Error).message}); truncated or corrupt`);
  }
}

/**
 * A CA certificate and its key, checked: a certificate, a CA, and the key is its key. `onMismatch` may find the
 * key's certificate elsewhere (see resumeSwitch).
 */
function loadSigner(
  certFile: string,
  keyFile: string,
  missing?: string,
  onMismatch?: (key: KeyObject) => Uint8Array | undefined,
): Signer {
  let [der] = certificates(certFile, missing);
  if (!der) throw new StateFileError(certFile, 'holds no PEM certificate (empty, truncated or corrupt)');
  if (!describeCertificate(der).isCa) {
    throw new StateFileError(certFile, 'not a CA certificate (basicConstraints cA is not set)');
  }
  const key = privateKey(keyFile, readStateFile(keyFile, missing));
  if (!new X509Certificate(der).checkPrivateKey(key)) {
    der = onMismatch?.(key) ?? der;
    if (!new X509Certificate(der).checkPrivateKey(key)) {
      throw new StateFileError(keyFile, `does not match the certificate in ${certFile}`);
    }
  }
  return signerFrom(der, key);
}

/**
 * A root rotation's switch writes root-key.pem, then root-cert.pem (each atomically; the bundle already holds the
 * new root). Interrupted between the two, the key's certificate is the one in the bundle: finish the switch.
 */
function resumeSwitch(bundleFile: string, certFile: string, key: KeyObject): Uint8Array | undefined {
  if (!existsSync(bundleFile)) return undefined;
  const mine = (d: Uint8Array) => new X509Certificate(d).checkPrivateKey(key) && describeCertificate(d).isCa;
  const der = certificates(bundleFile).find(mine);
  if (der) writeFileAtomic(certFile, toPem(der, 'CERTIFICATE'));
  return der;
}

/** The trust bundle: not empty, every block parses, and the signing root is in it (or proxies would refuse peers). */
function loadBundle(file: string, signerDer: Uint8Array): string[] {
  const ders = certificates(file);
  if (ders.length === 0) {
    throw new StateFileError(file, 'holds no certificate; it must hold at least the root in root-cert.pem');
  }
  const signer = Buffer.from(signerDer);
  if (!ders.some((d) => signer.equals(d))) throw new StateFileError(file, 'does not contain the root in root-cert.pem');
  return ders.map((d) => toPem(d, 'CERTIFICATE'));
}
