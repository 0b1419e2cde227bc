/**
 * Stage: ca. X.509 with pkijs over WebCrypto: a self-signed ECDSA P-256 root, and short-lived workload
 * certificates (SPIFFE SVIDs) whose only name is the SPIFFE URI SAN. Pure functions of their inputs and a clock.
 */
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

const subtle = webcrypto.subtle;
const engine = new pkijs.CryptoEngine({ name: 'node-webcrypto', crypto: webcrypto as unknown as Crypto });
export const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;

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
  privateKey: webcrypto.CryptoKey;
  publicKey: webcrypto.CryptoKey;
}

export function generateKeyPair(): Promise<KeyPair> {
  return subtle.generateKey(EC_ALG, true, ['sign', 'verify']) as Promise<KeyPair>;
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

export async function exportPrivateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return toPem(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

export async function importPrivateKeyPem(pem: string): Promise<webcrypto.CryptoKey> {
  const [der] = fromPem(pem, 'PRIVATE KEY');
  if (!der) throw new Error('no "BEGIN PRIVATE KEY" (PKCS#8) block found');
  return subtle.importKey('pkcs8', der, EC_ALG, true, ['sign']);
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

async function keyId(publicKey: webcrypto.CryptoKey): Promise<Uint8Array> {
  const spki = new Uint8Array(await subtle.exportKey('spki', publicKey));
  return new Uint8Array(createHash('sha1').update(spki).digest());
}

function serial(): asn1js.Integer {
  const b = randomBytes(16);
  b[0] &= 0x7f; // positive
  return new asn1js.Integer({ valueHex: b });
}

interface CertOptions {
  subjectCn: string;
  issuer?: { cert: pkijs.Certificate; key: webcrypto.CryptoKey; keyId: Uint8Array };
  publicKey: webcrypto.CryptoKey;
  signingKey: webcrypto.CryptoKey;
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  uriSan?: string;
}

async function build(o: CertOptions): Promise<Uint8Array> {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = serial();
  cert.subject = name(o.subjectCn);
  cert.issuer = o.issuer ? o.issuer.cert.subject : name(o.subjectCn);
  cert.notBefore.value = o.notBefore;
  cert.notAfter.value = o.notAfter;
  await cert.subjectPublicKeyInfo.importKey(o.publicKey as unknown as CryptoKey, engine);
  const ski = await keyId(o.publicKey);
  const exts = [
    ext(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: o.ca })),
    // keyUsage bits: digitalSignature(0x80) keyEncipherment(0x20) | keyCertSign(0x04) cRLSign(0x02)
    ext(OID.keyUsage, true, new asn1js.BitString({ valueHex: new Uint8Array([o.ca ? 0x86 : 0xa0]).buffer, unusedBits: 1 })),
    ext(OID.subjectKeyId, false, new asn1js.OctetString({ valueHex: ski })),
  ];
  if (o.issuer) {
    exts.push(ext(OID.authorityKeyId, false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: o.issuer.keyId }) })));
  }
  if (!o.ca) exts.push(ext(OID.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: [OID.serverAuth, OID.clientAuth] })));
  if (o.uriSan) {
    exts.push(ext(OID.subjectAltName, false, new pkijs.AltName({ altNames: [new pkijs.GeneralName({ type: 6, value: o.uriSan })] })));
  }
  cert.extensions = exts;
  await cert.sign(o.signingKey as unknown as CryptoKey, 'SHA-256', engine);
  return new Uint8Array(cert.toSchema(true).toBER());
}

export function createRootCertificate(keys: KeyPair, cn: string, notBefore: Date, notAfter: Date): Promise<Uint8Array> {
  return build({ subjectCn: cn, publicKey: keys.publicKey, signingKey: keys.privateKey, notBefore, notAfter, ca: true });
}

export interface Signer {
  cert: pkijs.Certificate;
  der: Uint8Array;
  key: webcrypto.CryptoKey;
  keyId: Uint8Array;
}

export async function signerFrom(der: Uint8Array, key: webcrypto.CryptoKey): Promise<Signer> {
  const cert = parseCertificate(der);
  const spkiKey = await cert.getPublicKey(undefined, engine);
  return { cert, der, key, keyId: await keyId(spkiKey as unknown as webcrypto.CryptoKey) };
}

/** A workload certificate: SPIFFE URI SAN, client and server auth, signed by `signer`. */
export function issueLeaf(signer: Signer, spiffeId: string, publicKey: webcrypto.CryptoKey, notBefore: Date, notAfter: Date): Promise<Uint8Array> {
  return build({
    subjectCn: spiffeId.slice(spiffeId.lastIndexOf('/') + 1),
    issuer: { cert: signer.cert, key: signer.key, keyId: signer.keyId },
    publicKey,
    signingKey: signer.key,
    notBefore,
    notAfter,
    ca: false,
    uriSan: spiffeId,
  });
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
  const c = parseCertificate(der);
  const bc = c.extensions?.find((e) => e.extnID === OID.basicConstraints)?.parsedValue as pkijs.BasicConstraints | undefined;
  const san = c.extensions?.find((e) => e.extnID === OID.subjectAltName)?.parsedValue as pkijs.AltName | undefined;
  return {
    subject: c.subject.typesAndValues.map((t) => `${t.type === OID.commonName ? 'CN' : t.type === OID.organization ? 'O' : t.type}=${t.value.valueBlock.value}`).join(', '),
    notBefore: c.notBefore.value,
    notAfter: c.notAfter.value,
    isCa: bc?.cA === true,
    uris: (san?.altNames ?? []).filter((g) => g.type === 6).map((g) => String(g.value)),
    serial: Buffer.from(c.serialNumber.valueBlock.valueHexView).toString('hex'),
  };
}

/** Verifies `leaf` was signed by `issuer` (signature only). */
export async function verifySignedBy(leaf: Uint8Array, issuer: Uint8Array): Promise<boolean> {
  return parseCertificate(leaf).verify(parseCertificate(issuer), engine);
}
