/**
 * Stage: server. The xDS server's TLS certificate, renewed while the server runs. grpc-js 1.14 has no call to
 * replace a bound server's credentials, but its certificate-provider credentials
 * (`experimental.createCertificateProviderServerCredentials`, what grpc-js-xds uses for xDS-managed servers) call
 * `setSecureContext` on the live HTTP/2 server whenever the provider reports a new certificate. This class is such
 * a provider, fed from the xDS CA: new TLS connections get the renewed certificate, established ones keep theirs
 * (TLS checks certificates only at the handshake), and nothing restarts.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../app/logger.js';
import type { Clock } from '../ca/clock.js';
import type { ServerCertificate } from '../ca/xds-ca.js';

type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

export interface ServingCertificateOptions {
  /** Issues a certificate for the identity (the xDS CA's issueServerCertificate). */
  issue(identity: string): ServerCertificate;
  identity: string;
  clock: Clock;
  /** Renew after this fraction of the certificate's lifetime (e.g. 0.5: a 90-day certificate every 45 days). */
  renewAtFraction: number;
  log: Logger;
}

export class ServingCertificate implements grpc.experimental.CertificateProvider {
  private readonly listeners = new Set<IdentityListener>();
  private cert: ServerCertificate;
  private renewAt = 0;
  private cancel?: () => void;
  private stopped = false;
  /** Certificates issued so far (the first one included). */
  issued = 0;

  constructor(private readonly o: ServingCertificateOptions) {
    this.cert = this.issueNow(o.identity);
  }

  /** Server credentials whose certificate follows this provider (no client certificate is requested). */
  credentials(): grpc.ServerCredentials {
    // The declared parameter names are swapped: the first argument is the identity provider, the second the CA one.
    return grpc.experimental.createCertificateProviderServerCredentials(this, null, false);
  }

  get current(): ServerCertificate {
    return this.cert;
  }

  /** Re-issues the certificate now (after an xDS CA rotation, or for another identity) and hands it to gRPC. */
  renew(identity = this.cert.identity): void {
    if (this.stopped) return;
    try {
      this.cert = this.issueNow(identity);
    } catch (err) {
      // Keep serving the current certificate; try again in a minute (it still has half its life).
      this.o.log.error('cannot renew the xDS server certificate', { error: (err as Error).message });
      this.cancel?.();
      this.cancel = this.o.clock.after(60_000, () => this.renew());
      return;
    }
    for (const l of this.listeners) l(this.update());
    const c = this.cert;
    const notAfter = new Date(c.notAfter).toISOString();
    this.o.log.info('xds server certificate renewed', { serial: c.serial, notAfter, anchor: c.anchor });
  }

  /** Follows the Mesh's trust domain and root namespace: a changed identity is re-issued at once. */
  setIdentity(identity: string): void {
    if (identity !== this.cert.identity) this.renew(identity);
  }

  status(): { identity: string; serial: string; anchor: string; notAfter: string; renewAt: string } {
    const c = this.cert;
    const at = (t: number) => new Date(t).toISOString();
    return { ...pick(c), notAfter: at(c.notAfter), renewAt: at(this.renewAt) };
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
  }

  private issueNow(identity: string): ServerCertificate {
    const cert = this.o.issue(identity);
    this.issued++;
    this.cancel?.();
    const delay = Math.max(1_000, (cert.notAfter - this.o.clock.now()) * this.o.renewAtFraction);
    this.renewAt = this.o.clock.now() + delay;
    this.cancel = this.o.clock.after(delay, () => this.renew());
    return cert;
  }

  // ---- grpc.experimental.CertificateProvider ----

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.listeners.add(listener);
    // Not synchronously: grpc-js registers the server's watcher only after this returns, and would miss it.
    process.nextTick(() => {
      if (this.listeners.has(listener)) listener(this.update());
    });
  }

  private update(): grpc.experimental.IdentityCertificateUpdate {
    return { certificate: Buffer.from(this.cert.certPem), privateKey: Buffer.from(this.cert.keyPem) };
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.listeners.delete(listener);
  }

  addCaCertificateListener(): void {} // no client certificates: proxies authenticate with their token

  removeCaCertificateListener(): void {}
}

const pick = ({ identity, serial, anchor }: ServerCertificate) => ({ identity, serial, anchor });
