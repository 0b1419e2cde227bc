/**
 * Stage: ca. X.509: a self-signed ECDSA P-256 root (built with pkijs), and short-lived workload certificates
 * (SPIFFE SVIDs) whose only name is the SPIFFE URI SAN (built on a DER fast path, see der.ts). Parsing uses node's
 * native X509Certificate. Pure functions of their inputs and a clock.
 */
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import * as D from './der.js';

// Keys are node:crypto KeyObjects; signatures come from node's crypto.sign (synchronous, tens of microseconds).
const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

const OID = {
  organization: '2.5.4.10',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** An ECDSA P-256 key pair. */
export function generateKeyPair(): KeyPair {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** All PEM blocks with the given label, as DER. */
export function fromPem(pem: string, label: string): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...pem.matchAll(re)].map((m) => new Uint8Array(Buffer.from(m[1].replace(/\s+/g, ''), 'base64')));
}

export function exportPrivateKeyPem(key: KeyObject): string {
  const p256 = p256Parts(key);
  if (p256) return p256Pkcs8Pem(p256);
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * A new workload key pair's PKCS#8 PEM and SPKI DER. OpenSSL's PKCS#8 and SPKI encoders cost ~190 us and ~245 us
 * per key; for P-256 both are fixed shapes, built here from the key's SEC1 DER (~20 us) to the same bytes.
 * (Not from a JWK export: on Node 20 exporting an EC key as JWK can deadlock with a concurrent GC.)
 */
export interface KeyMaterial {
  keyPem: string;
  spki: Uint8Array;
}

export function keyMaterial(keys: KeyPair): KeyMaterial {
  const p256 = p256Parts(keys.privateKey);
  if (!p256) return { keyPem: exportPrivateKeyPem(keys.privateKey), spki: spkiOf(keys.publicKey) };
  return { keyPem: p256Pkcs8Pem(p256), spki: D.seq(P256_ALGORITHM, D.bitString(p256.point)) };
}

/** id-ecPublicKey with the prime256v1 curve: the AlgorithmIdentifier of P-256 SPKI and PKCS#8. */
const P256_ALGORITHM = D.seq(D.oid('1.2.840.10045.2.1'), D.oid('1.2.840.10045.3.1.7'));
/** SEC1 ECPrivateKey of P-256 as OpenSSL writes it: version 1, d (32 bytes), [0] curve, [1] uncompressed point. */
const SEC1_P256_HEAD = Buffer.from('30770201010420', 'hex');
const SEC1_P256_MID = Buffer.concat([Buffer.from('a00a0608', 'hex'), Buffer.from('2a8648ce3d030107', 'hex'), Buffer.from('a144034200', 'hex')]);

function p256Parts(key: KeyObject): { d: Uint8Array; point: Uint8Array } | undefined {
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return undefined;
  const der = key.export({ type: 'sec1', format: 'der' });
  if (der.length !== 121 || !der.subarray(0, 7).equals(SEC1_P256_HEAD) || !der.subarray(39, 56).equals(SEC1_P256_MID) || der[56] !== 4) return undefined;
  return { d: new Uint8Array(der.subarray(7, 39)), point: new Uint8Array(der.subarray(56)) };
}

function p256Pkcs8Pem(p: { d: Uint8Array; point: Uint8Array }): string {
  const ecPrivateKey = D.seq(D.integer(new Uint8Array([1])), D.octets(p.d), D.tlv(0xa1, D.bitString(p.point)));
  return toPem(D.seq(D.integer(new Uint8Array([0])), P256_ALGORITHM, D.octets(ecPrivateKey)), 'PRIVATE KEY');
}

/** Reads a PKCS#8 ECDSA P-256 private key. */
export function importPrivateKeyPem(pem: string): KeyObject {
  if (!pem.includes('BEGIN PRIVATE KEY')) throw new Error('no "BEGIN PRIVATE KEY" (PKCS#8) block found');
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('the CA key must be ECDSA P-256');
  return key;
}

function name(cn: string): pkijs.RelativeDistinguishedNames {
  return new pkijs.RelativeDistinguishedNames({
    typesAndValues: [
      new pkijs.AttributeTypeAndValue({ type: OID.organization, value: new asn1js.Utf8String({ value: 'Chancery' }) }),
      new pkijs.AttributeTypeAndValue({ type: OID.commonName, value: new asn1js.Utf8String({ value: cn }) }),
    ],
  });
}

function ext(extnID: string, critical: boolean, value: { toSchema(): { toBER(): ArrayBuffer } } | asn1js.BaseBlock): pkijs.Extension {
  const ber = 'toSchema' in value ? value.toSchema().toBER() : value.toBER();
  return new pkijs.Extension({ extnID, critical, extnValue: ber });
}

function spkiOf(publicKey: KeyObject): Uint8Array {
  return new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
}

function keyId(spki: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha1').update(spki).digest());
}

function serial(): asn1js.Integer {
  const b = randomBytes(16);
  b[0] = (b[0] & 0x7f) | 0x40; // positive, and never a leading zero byte (DER INTEGERs are minimal)
  return new asn1js.Integer({ valueHex: b });
}

interface CertOptions {
  subjectCn: string;
  issuer?: { cert: pkijs.Certificate; keyId: Uint8Array };
  publicKey: KeyObject;
  signingKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  uriSan?: string;
  dnsSans?: string[];
}

function build(o: CertOptions): Uint8Array {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = serial();
  cert.subject = name(o.subjectCn);
  cert.issuer = o.issuer ? o.issuer.cert.subject : name(o.subjectCn);
  cert.notBefore.value = o.notBefore;
  cert.notAfter.value = o.notAfter;
  const spki = spkiOf(o.publicKey);
  cert.subjectPublicKeyInfo = pkijs.PublicKeyInfo.fromBER(spki as Uint8Array<ArrayBuffer>);
  const exts = [
    ext(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: o.ca })),
    // keyUsage bits: digitalSignature(0x80) keyEncipherment(0x20) | keyCertSign(0x04) cRLSign(0x02)
    ext(OID.keyUsage, true, new asn1js.BitString({ valueHex: new Uint8Array([o.ca ? 0x86 : 0xa0]).buffer, unusedBits: 1 })),
    ext(OID.subjectKeyId, false, new asn1js.OctetString({ valueHex: keyId(spki) })),
  ];
  if (o.issuer) {
    exts.push(ext(OID.authorityKeyId, false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: o.issuer.keyId }) })));
  }
  if (!o.ca) exts.push(ext(OID.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: [OID.serverAuth, OID.clientAuth] })));
  const altNames = [
    ...(o.uriSan ? [new pkijs.GeneralName({ type: 6, value: o.uriSan })] : []),
    ...(o.dnsSans ?? []).map((value) => new pkijs.GeneralName({ type: 2, value })),
  ];
  if (altNames.length > 0) exts.push(ext(OID.subjectAltName, false, new pkijs.AltName({ altNames })));
  cert.extensions = exts;
  const algorithm = new pkijs.AlgorithmIdentifier({ algorithmId: ECDSA_WITH_SHA256 });
  cert.signature = algorithm;
  cert.signatureAlgorithm = algorithm;
  const tbs = new Uint8Array(cert.encodeTBS().toBER());
  // X.509 carries ECDSA signatures DER-encoded, which is node's default for EC keys.
  cert.signatureValue = new asn1js.BitString({ valueHex: sign('sha256', tbs, o.signingKey) });
  return new Uint8Array(cert.toSchema(true).toBER());
}

export function createRootCertificate(keys: KeyPair, cn: string, notBefore: Date, notAfter: Date): Uint8Array {
  return build({ subjectCn: cn, publicKey: keys.publicKey, signingKey: keys.privateKey, notBefore, notAfter, ca: true });
}

/**
 * A certificate for host names (DNS SANs; the first is also the CN), self-signed or signed by `issuer`: gateway
 * credentials for the example mesh and tests. A self-signed one is a CA too, so clients can trust it directly
 * (`curl --cacert tls.crt`).
 */
export function createTlsCertificate(o: {
  keys: KeyPair;
  dnsNames: string[];
  notBefore: Date;
  notAfter: Date;
  issuer?: { der: Uint8Array; key: KeyObject };
  ca?: boolean;
}): Uint8Array {
  const issuer = o.issuer ? signerFrom(o.issuer.der, o.issuer.key) : undefined;
  return build({
    subjectCn: o.dnsNames[0] ?? 'chancery',
    ...(issuer ? { issuer: { cert: issuer.cert, keyId: issuer.keyId } } : {}),
    publicKey: o.keys.publicKey,
    signingKey: issuer ? issuer.key : o.keys.privateKey,
    notBefore: o.notBefore,
    notAfter: o.notAfter,
    ca: o.ca ?? !issuer,
    dnsSans: o.dnsNames,
  });
}

export interface Signer {
  cert: pkijs.Certificate;
  der: Uint8Array;
  key: KeyObject;
  keyId: Uint8Array;
  /** DER of the signer's subject Name: the issuer of every certificate it signs. */
  subjectDer: Uint8Array;
  serial: string;
}

export function signerFrom(der: Uint8Array, key: KeyObject): Signer {
  const cert = parseCertificate(der);
  const spki = new Uint8Array(cert.subjectPublicKeyInfo.toSchema().toBER());
  return { cert, der, key, keyId: keyId(spki), subjectDer: new Uint8Array(cert.subject.toSchema().toBER()), serial: describeCertificate(der).serial };
}

const LEAF = {
  algorithm: D.seq(D.oid(ECDSA_WITH_SHA256)),
  version: D.tlv(0xa0, D.integer(new Uint8Array([2]))),
  basicConstraints: D.seq(D.oid(OID.basicConstraints), D.bool(true), D.octets(D.seq())),
  // digitalSignature | keyEncipherment: 0b101 followed by five unused bits.
  keyUsage: D.seq(D.oid(OID.keyUsage), D.bool(true), D.octets(D.bitString(new Uint8Array([0xa0]), 5))),
  extKeyUsage: D.seq(D.oid(OID.extKeyUsage), D.octets(D.seq(D.oid(OID.serverAuth), D.oid(OID.clientAuth)))),
};

/** A workload certificate: SPIFFE URI SAN, client and server auth, signed by `signer`. Returns DER and serial. */
export function issueLeaf(signer: Signer, spiffeId: string, publicKey: KeyObject | Uint8Array, notBefore: Date, notAfter: Date): { der: Uint8Array; serial: string } {
  const serialBytes = randomBytes(16);
  serialBytes[0] = (serialBytes[0] & 0x7f) | 0x40; // positive, always 16 bytes
  const spki = publicKey instanceof Uint8Array ? publicKey : spkiOf(publicKey); // SPKI DER, or the key to encode
  const subject = D.seq(
    D.set(D.seq(D.oid(OID.organization), D.utf8('Chancery'))),
    D.set(D.seq(D.oid(OID.commonName), D.utf8(spiffeId.slice(spiffeId.lastIndexOf('/') + 1)))),
  );
  const extensions = D.seq(
    LEAF.basicConstraints,
    LEAF.keyUsage,
    D.seq(D.oid(OID.subjectKeyId), D.octets(D.octets(keyId(spki)))),
    D.seq(D.oid(OID.authorityKeyId), D.octets(D.seq(D.tlv(0x80, signer.keyId)))),
    LEAF.extKeyUsage,
    D.seq(D.oid(OID.subjectAltName), D.octets(D.seq(D.tlv(0x86, Buffer.from(spiffeId, 'ascii'))))),
  );
  const tbs = D.seq(
    LEAF.version,
    D.integer(serialBytes),
    LEAF.algorithm,
    signer.subjectDer,
    D.seq(D.time(notBefore), D.time(notAfter)),
    subject,
    spki,
    D.tlv(0xa3, extensions),
  );
  // X.509 carries ECDSA signatures DER-encoded, which is node's default for EC keys.
  const der = D.seq(tbs, LEAF.algorithm, D.bitString(sign('sha256', tbs, signer.key)));
  return { der, serial: serialBytes.toString('hex') };
}

export function parseCertificate(der: Uint8Array): pkijs.Certificate {
  return pkijs.Certificate.fromBER(der as Uint8Array<ArrayBuffer>);
}

export interface CertificateInfo {
  subject: string;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  uris: string[];
  serial: string;
}

export function describeCertificate(der: Uint8Array): CertificateInfo {
  const c = new X509Certificate(der);
  return {
    subject: c.subject.split('\n').join(', '),
    notBefore: new Date(c.validFrom),
    notAfter: new Date(c.validTo),
    isCa: c.ca,
    uris: (c.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('URI:')).map((n) => n.slice(4)),
    serial: c.serialNumber.toLowerCase(),
  };
}

/** Verifies `leaf` was signed by `issuer` (signature only). */
export function verifySignedBy(leaf: Uint8Array, issuer: Uint8Array): boolean {
  return new X509Certificate(leaf).verify(new X509Certificate(issuer).publicKey);
}
