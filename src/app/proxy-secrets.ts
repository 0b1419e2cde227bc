/**
 * The SDS secrets each proxy is served: its workload certificate, the trust bundle, and the parts of the credentials
 * its gateway listeners terminate TLS with or its clusters originate TLS with (ir/credentials.ts), and nothing
 * else. Built and encoded once per distinct set: every sidecar of an identity shares one set, and a credential's
 * secrets are shared by the proxies that use it.
 */
import type { IssuedCertificate } from '../ca/authority.js';
import type { Credential } from '../credentials/read-credential.js';
import type { CredentialUse } from '../ir/credentials.js';
import { ResourceCache, type EncodedResource } from '../snapshot/resource-cache.js';
import { typeSnapshot, type Snapshot, type TypeSnapshot } from '../snapshot/snapshot.js';
import { SECRET_TRUST_BUNDLE, SECRET_WORKLOAD } from '../xds/names.js';
import { buildCredentialSecrets, buildTrustBundleSecret, buildWorkloadSecret } from '../xds/resources/secret.js';
import { TYPE } from '../xds/type-urls.js';

export class ProxySecrets {
  private readonly cache = new ResourceCache();
  /** Per certificate (or none) and trust bundle: the secrets of every sidecar of that identity. */
  private readonly sets = new WeakMap<object, { bundle: string; secrets: TypeSnapshot }>();
  private readonly noCertificate = {};

  /** `credential(name)`: the version of a credential to serve (the last good one), if any. */
  constructor(private readonly credential: (name: string) => Credential | undefined) {}

  /** The secrets of a proxy with this certificate that uses these parts of these credentials. */
  of(svid: IssuedCertificate | undefined, bundle: string, credentials: readonly CredentialUse[]): TypeSnapshot {
    const base = this.mesh(svid, bundle);
    if (credentials.length === 0) return base;
    const resources = new Map(base.resources);
    for (const use of credentials) {
      const c = this.credential(use.name);
      if (!c) continue; // the revision was accepted with it; a later failure keeps no version to serve
      for (const json of buildCredentialSecrets(use.name, c, use)) {
        const secretName = (json as { name: string }).name;
        resources.set(secretName, this.cache.get(TYPE.secret, secretName, json, []));
      }
    }
    return typeSnapshot(resources);
  }

  /** Drops encodings no served snapshot holds any more. */
  sweep(served: () => Iterable<Snapshot>): void {
    this.cache.sweep(served);
  }

  private mesh(svid: IssuedCertificate | undefined, bundle: string): TypeSnapshot {
    const key = svid ?? this.noCertificate;
    const hit = this.sets.get(key);
    if (hit?.bundle === bundle) return hit.secrets;
    const resources = new Map<string, EncodedResource>();
    const put = (name: string, json: object) => resources.set(name, this.cache.get(TYPE.secret, name, json, []));
    if (svid) put(SECRET_WORKLOAD, buildWorkloadSecret(svid.chainPem, svid.keyPem));
    put(SECRET_TRUST_BUNDLE, buildTrustBundleSecret(bundle));
    const secrets = typeSnapshot(resources);
    this.sets.set(key, { bundle, secrets });
    return secrets;
  }
}
