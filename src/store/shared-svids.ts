/**
 * Store: one workload certificate (SVID) per identity for every replica, `svids/<spiffe id>` (certificate chain in
 * the clear, private key sealed). Two replicas sending different certificates for one identity would send different
 * SDS secrets, so an Envoy moving between them would receive new ones and snapshots would not be byte-identical.
 * The replica that needs a missing (or due, or superseded) certificate issues it and stores it with a
 * compare-and-swap; a replica that loses takes the winner's. Every replica follows the prefix and serves a newer
 * certificate stored by another (SvidManager.adopt).
 */
import type { IKeyValue } from 'etcd3';
import type { Authority, IssuedCertificate } from '../ca/authority.js';
import type { Clock } from '../ca/clock.js';
import { sharedRotateAt, type SvidManager, type SvidSettings, type SvidSource } from '../ca/svids.js';
import type { EtcdStore } from './etcd-store.js';

const PREFIX = 'svids/';

interface Stored extends Omit<IssuedCertificate, 'keyPem'> {
  /** The private key, sealed (sealed.ts) for this key name. */
  sealedKey: string;
}

export class SharedSvids implements SvidSource {
  issued = 0;

  constructor(
    private readonly store: EtcdStore,
    private readonly authority: Authority,
    private readonly clock: Clock,
    private readonly settings: () => SvidSettings,
  ) {}

  async obtain(identity: string, ttlMs: number, replacing?: string): Promise<IssuedCertificate> {
    const key = PREFIX + identity;
    const held = await this.read(key);
    if (held && this.usable(held.cert, ttlMs, replacing)) return held.cert;
    const cert = await this.authority.issue(identity, ttlMs);
    const value = JSON.stringify(this.toStored(key, cert));
    const kv = this.store.kv;
    const guard = held ? kv.if(key, 'Mod', '==', held.mod) : kv.if(key, 'Create', '==', 0);
    const r = await guard.then(kv.put(key).value(value)).commit();
    if (r.succeeded) {
      this.issued++;
      return cert;
    }
    const winner = await this.read(key); // another replica stored one first: everyone serves that one
    return winner?.cert ?? cert;
  }

  /** Follows every replica's certificates: a newer one for an identity in use here is served from now on. */
  follow(svids: SvidManager): Promise<void> {
    const put = (id: string, value: string) => {
      const cert = this.parse(PREFIX + id, value);
      if (cert) svids.adopt(id, cert);
    };
    return this.store.follow(PREFIX, put, () => undefined);
  }

  /** A stored certificate is served while it is from the current signer, with the lifetime asked, before its time. */
  private usable(cert: IssuedCertificate, ttlMs: number, replacing?: string): boolean {
    if (cert.serial === replacing || cert.signerSerial !== this.authority.signerSerial) return false;
    if (cert.notAfter - (cert.notBefore + 60_000) !== ttlMs) return false;
    return this.clock.now() < sharedRotateAt(cert, this.settings());
  }

  private async read(key: string): Promise<{ cert: IssuedCertificate; mod: string } | undefined> {
    const r = await this.store.kv.get(key).exec();
    const kv: IKeyValue | undefined = r.kvs[0];
    const cert = kv ? this.parse(key, kv.value.toString()) : undefined;
    return kv && cert ? { cert, mod: String(kv.mod_revision) } : undefined;
  }

  private toStored(key: string, cert: IssuedCertificate): Stored {
    const { keyPem, ...rest } = cert;
    return { ...rest, sealedKey: this.store.seal(key, keyPem) };
  }

  private parse(key: string, value: string): IssuedCertificate | undefined {
    try {
      const { sealedKey, ...rest } = JSON.parse(value) as Stored;
      return { ...rest, keyPem: this.store.open(key, sealedKey) };
    } catch {
      return undefined;
    }
  }
}
