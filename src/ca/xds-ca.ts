/**
 * Stage: ca. The xDS CA: a long-lived trust anchor that signs one thing, the control plane's own xDS server
 * certificate. It is what every Envoy bootstrap trusts, and it is separate from the workload root on purpose.
 *
 * Why separate: a bootstrap is a static file; what it trusts cannot change without restarting Envoy with a new one.
 * The workload root must be free to rotate (`rotate-root`), and its trust bundle reaches Envoys over SDS, which
 * needs a working xDS connection first. When bootstraps trusted the workload root, the first restart after a
 * rotation served a certificate from the new root and no Envoy could reconnect. With this anchor, root rotations
 * and restarts never touch what bootstraps trust, and no workload certificate can ever pass for the control plane.
 * (Keeping old workload roots trusted forever instead would mean keeping their keys, defeating their rotation.)
 *
 * The anchor lives 10 years; the server certificate it signs is short and renewed while running (see
 * server/serving-certificate.ts). Rotating the anchor itself needs new bootstraps, in two steps: `begin` creates the
 * next anchor, which every bootstrap written from then on trusts too; once every Envoy runs such a bootstrap,
 * `finish` makes the next anchor the current one and the server certificate is re-issued from it.
 *
 * Files (owner-only, each holding the key and the certificate, so a step is one atomic write or rename):
 * `<state-dir>/ca/xds-ca.pem`, and during a rotation `<state-dir>/ca/xds-ca-next.pem`.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { readStateFile, restoreRemedy, StateFileError, syncDirectory, writeFileAtomic } from '../util/files.js';
import type { Clock } from './clock.js';
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

const ANCHOR_LIFETIME_MS = 10 * 365 * 24 * 3_600_000;

/** The xDS server's key and certificate. */
export interface ServerCertificate {
  certPem: string;
  keyPem: string;
  identity: string;
  serial: string;
  notBefore: number;
  notAfter: number;
  /** Serial of the anchor that signed it. */
  anchor: string;
}

interface Anchor {
  signer: Signer;
  pem: string;
}

export class XdsCa {
  private constructor(
    private current: Anchor,
    private next: Anchor | undefined,
    private readonly files: { current: string; next: string },
    private readonly clock: Clock,
  ) {}

  /** Loads the anchor (and a rotation's next one) from the state directory; creates it only when `create`. */
  static open(o: { stateDir: string; clock: Clock; create: boolean }): XdsCa {
    const dir = path.join(o.stateDir, 'ca');
    const files = { current: path.join(dir, 'xds-ca.pem'), next: path.join(dir, 'xds-ca-next.pem') };
    if (!existsSync(files.current) && o.create) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const anchor = newAnchor(o.clock);
      writeFileAtomic(files.current, anchor.file);
      return new XdsCa(anchor.anchor, undefined, files, o.clock);
    }
    const lost = restoreRemedy('every Envoy bootstrap trusts it to reach the control plane');
    const current = loadAnchor(files.current, lost);
    const next = existsSync(files.next) ? loadAnchor(files.next) : undefined;
    return new XdsCa(current, next, files, o.clock);
  }

  /**
   * Replicas: takes the anchors another replica's rotation step left in the state directory (store/shared-trust.ts
   * wrote them there). Returns whether anything changed, and whether the current anchor did (then the caller
   * re-issues the server certificate).
   */
  reload(): { changed: boolean; switched: boolean } {
    const stateDir = path.dirname(path.dirname(this.files.current));
    const fresh = XdsCa.open({ stateDir, clock: this.clock, create: false });
    const switched = fresh.current.signer.serial !== this.current.signer.serial;
    const changed = switched || fresh.next?.signer.serial !== this.next?.signer.serial;
    this.current = fresh.current;
    this.next = fresh.next;
    return { changed, switched };
  }

  /** PEM of every anchor a bootstrap must trust: the current one and, during a rotation, the next. */
  bootstrapTrustPem(): string {
    return this.current.pem + (this.next?.pem ?? '');
  }

  /** A fresh key and server certificate for the control plane's SPIFFE id, from the current anchor. */
  issueServerCertificate(identity: string, ttlMs: number): ServerCertificate {
    const keys = generateKeyPair();
    const now = this.clock.now();
    const notBefore = now - 60_000; // clock skew
    const notAfter = now + ttlMs;
    const signer = this.current.signer;
    const { der, serial } = issueLeaf(signer, identity, keys.publicKey, new Date(notBefore), new Date(notAfter));
    const [certPem, keyPem] = [toPem(der, 'CERTIFICATE'), exportPrivateKeyPem(keys.privateKey)];
    return { certPem, keyPem, identity, serial, notBefore, notAfter, anchor: signer.serial };
  }

  /** Step 1 of an anchor rotation: create the next anchor; bootstraps written from now on trust both. */
  beginRotation(): void {
    if (this.next) throw new Error(`an xDS CA rotation is already in progress (${this.files.next}); finish it first`);
    const { anchor, file } = newAnchor(this.clock);
    writeFileAtomic(this.files.next, file);
    this.next = anchor;
  }

  /** Step 2: the next anchor becomes the current one (the caller then re-issues the server certificate). */
  finishRotation(): void {
    if (!this.next) throw new Error('no xDS CA rotation in progress; begin one first');
    renameSync(this.files.next, this.files.current);
    syncDirectory(path.dirname(this.files.current));
    this.current = this.next;
    this.next = undefined;
  }

  status(): { current: AnchorInfo; next: AnchorInfo | null } {
    return { current: info(this.current), next: this.next ? info(this.next) : null };
  }
}

export interface AnchorInfo {
  serial: string;
  notAfter: string;
  /** SHA-256 of the certificate, as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint: string;
}

function info(a: Anchor): AnchorInfo {
  const c = new X509Certificate(a.signer.der);
  return { serial: a.signer.serial, notAfter: new Date(c.validTo).toISOString(), fingerprint: c.fingerprint256 };
}

function newAnchor(clock: Clock): { anchor: Anchor; file: string } {
  const keys = generateKeyPair();
  const now = clock.now();
  const [from, to] = [new Date(now - 60_000), new Date(now + ANCHOR_LIFETIME_MS)];
  const der = createRootCertificate(keys, 'Chancery xDS CA', from, to);
  const pem = toPem(der, 'CERTIFICATE');
  const file = exportPrivateKeyPem(keys.privateKey) + pem;
  return { anchor: { signer: signerFrom(der, keys.privateKey), pem }, file };
}

/** One key and one CA certificate that belong together, or an error naming the file. */
function loadAnchor(file: string, missing?: string): Anchor {
  const text = readStateFile(file, missing);
  const keys = fromPem(text, 'PRIVATE KEY');
  const certs = fromPem(text, 'CERTIFICATE');
  if (keys.length !== 1 || certs.length !== 1) {
    const held = `${keys.length} private key(s) and ${certs.length} certificate(s)`;
    throw new StateFileError(file, `must hold one private key and one certificate, not ${held} (truncated?)`);
  }
  let key: KeyObject;
  let cert: X509Certificate;
  try {
    key = importPrivateKeyPem(toPem(keys[0], 'PRIVATE KEY'));
  } catch (err) {
    throw new StateFileError(file, `the private key is not valid (${(err as Error).message})`);
  }
  try {
    cert = new X509Certificate(certs[0]);
  } catch (err) {
    throw new StateFileError(file, `the certificate does not parse (${(err as Error).message})`);
  }
  if (!describeCertificate(certs[0]).isCa) throw new StateFileError(file, 'the certificate is not a CA certificate');
  if (!cert.checkPrivateKey(key)) throw new StateFileError(file, 'the private key does not match the certificate');
  return { signer: signerFrom(certs[0], key), pem: toPem(certs[0], 'CERTIFICATE') };
}
