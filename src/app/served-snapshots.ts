/**
 * The snapshots that are served: each proxy's compiled snapshot (no secrets) plus its secrets over SDS (its workload
 * certificate, the trust bundle and the credentials it uses; see proxy-secrets.ts). Secrets are a fast
 * path: a rotation replaces the secrets of the affected proxies' snapshots without recompiling anything.
 */
import type { IssuedCertificate } from '../ca/authority.js';
import type { Credential } from '../credentials/read-credential.js';
import type { CredentialUse } from '../ir/credentials.js';
import { withResources, type Snapshot } from '../snapshot/snapshot.js';
import { TYPE } from '../xds/type-urls.js';
import { ProxySecrets } from './proxy-secrets.js';

export class ServedSnapshots {
  private readonly secrets: ProxySecrets;

  /** `credential(name)`: the version of a credential to serve (the last good one), if any. */
  constructor(credential: (name: string) => Credential | undefined) {
    this.secrets = new ProxySecrets(credential);
  }

  /**
   * The snapshots to serve after `served`: those of `ids` rebuilt from their `base` and current secrets, the
   * others kept (relabelled with their base's revision), and those of proxies no longer in `base` dropped.
   */
  next(
    base: ReadonlyMap<string, Snapshot>,
    served: ReadonlyMap<string, Snapshot>,
    ids: readonly string[],
    bundle: string,
    proxy: (id: string) => { certificate: IssuedCertificate | undefined; credentials: readonly CredentialUse[] },
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
      const p = proxy(id);
      next.set(id, withResources(snap, TYPE.secret, this.secrets.of(p.certificate, bundle, p.credentials)));
    }
    for (const id of next.keys()) if (!base.has(id)) next.delete(id);
    this.secrets.sweep(() => next.values());
    return next;
  }
}
