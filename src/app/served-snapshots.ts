/**
 * The snapshots that are served: each proxy's compiled snapshot (no secrets) plus its secrets over SDS, its
 * workload certificate and the trust bundle. Secrets are a fast path: a rotation replaces the secrets of the
 * affected proxies' snapshots without recompiling anything. Each certificate's secrets are built, encoded and
 * hashed once and shared by every proxy of that identity.
 */
import type { IssuedCertificate } from '../ca/authority.js';
import { ResourceCache, type EncodedResource } from '../snapshot/resource-cache.js';
import { typeSnapshot, withResources, type Snapshot, type TypeSnapshot } from '../snapshot/snapshot.js';
import { SECRET_TRUST_BUNDLE, SECRET_WORKLOAD } from '../xds/names.js';
import { buildTrustBundleSecret, buildWorkloadSecret } from '../xds/resources/secret.js';
import { TYPE } from '../xds/type-urls.js';

export class ServedSnapshots {
  private readonly secretCache = new ResourceCache();
  /** Secrets per certificate (shared by every proxy of an identity) and trust bundle. */
  private readonly secretSets = new WeakMap<object, { bundle: string; secrets: TypeSnapshot }>();
  private readonly noCertificate = {};

  /**
   * The snapshots to serve after `served`: those of `ids` rebuilt from their `base` and current certificates, the
   * others kept (relabelled with their base's revision), and those of proxies no longer in `base` dropped.
   */
  next(
    base: ReadonlyMap<string, Snapshot>,
    served: ReadonlyMap<string, Snapshot>,
    ids: readonly string[],
    bundle: string,
    certificateOf: (proxyId: string) => IssuedCertificate | undefined,
  ): Map<string, Snapshot> {
    const next = new Map(served);
    const wanted = new Set(ids);
    for (const [id, snap] of base) {
      if (!wanted.has(id) && next.has(id)) {
        // Unchanged: label it with the base's revision.
        const kept = next.get(id)!;
        if (kept.revision !== snap.revision) next.set(id, { ...kept, revision: snap.revision });
        continue;
      }
      next.set(id, withResources(snap, TYPE.secret, this.secretsOf(certificateOf(id), bundle)));
    }
    for (const id of next.keys()) if (!base.has(id)) next.delete(id);
    this.secretCache.sweep(() => next.values());
    return next;
  }

  private secretsOf(svid: IssuedCertificate | undefined, bundle: string): TypeSnapshot {
    const key = svid ?? this.noCertificate;
    const hit = this.secretSets.get(key);
    if (hit?.bundle === bundle) return hit.secrets;
    const resources = new Map<string, EncodedResource>();
    const encode = (name: string, json: object) => this.secretCache.get(TYPE.secret, name, json, []);
    if (svid) resources.set(SECRET_WORKLOAD, encode(SECRET_WORKLOAD, buildWorkloadSecret(svid.chainPem, svid.keyPem)));
    resources.set(SECRET_TRUST_BUNDLE, encode(SECRET_TRUST_BUNDLE, buildTrustBundleSecret(bundle)));
    const secrets = typeSnapshot(resources);
    this.secretSets.set(key, { bundle, secrets });
    return secrets;
  }
}
