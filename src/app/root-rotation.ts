/**
 * Root rotation without restarts, in three steps, each waiting until every connected proxy ACKed the secrets the
 * previous step published: trust the new root beside the old; sign with the new root (every certificate reissued);
 * drop the old root. Runs each step through the control plane's task queue, so it never interleaves with a reload.
 */
import type { Authority } from '../ca/authority.js';
import type { SvidManager } from '../ca/svids.js';
import type { AdsServer } from '../server/ads-server.js';
import { TYPE } from '../xds/type-urls.js';

export interface RootRotationDeps {
  authority: Authority;
  svids: SvidManager;
  ads: AdsServer;
  /** Runs a task in the control plane's queue (one at a time, in order). */
  enqueue<T>(fn: () => Promise<T>): Promise<T>;
  /** Resolves once the tasks queued so far have run. */
  idle(): Promise<unknown>;
  /** Rebuilds and publishes every proxy's secrets (the trust bundle changed). */
  republishSecrets(): void;
  /** Replicas: after each step, shares it and waits until every replica's proxies ACKed it (store/replica.ts). */
  shareStep?(): Promise<void>;
}

export async function rotateRoot(d: RootRotationDeps, waitMs: number): Promise<void> {
  await d.enqueue(async () => {
    await d.authority.beginRootRotation();
    d.republishSecrets();
  });
  await waitForSecretsAcked(d, waitMs);
  await d.shareStep?.();
  await d.enqueue(async () => {
    d.authority.switchSigner();
    await d.svids.reissueAll();
  });
  await waitForSecretsAcked(d, waitMs);
  await d.shareStep?.();
  await d.enqueue(async () => {
    d.authority.finishRootRotation();
    d.republishSecrets();
  });
  await waitForSecretsAcked(d, waitMs);
  await d.shareStep?.();
}

/**
 * Replicas: another replica's rotation step arrived (its trust files are in the state directory now): sign and
 * trust as it does, take the certificates it reissued, republish, and acknowledge once this replica's proxies
 * ACKed.
 */
export async function followRotationStep(d: RootRotationDeps, ack: () => Promise<void>, waitMs: number) {
  await d.enqueue(async () => {
    await d.authority.reload();
    await d.svids.refreshSigner(d.authority.signerSerial);
    d.republishSecrets();
  });
  await waitForSecretsAcked(d, waitMs);
  await ack();
}

/** Resolves when every connected proxy has ACKed the secrets of its current snapshot. */
export async function waitForSecretsAcked(d: Pick<RootRotationDeps, 'ads' | 'idle'>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await d.idle();
    const behind = d.ads.registry.all().filter((p) => {
      if (!p.connected) return false;
      const want = d.ads.snapshots.get(p.id)?.types.get(TYPE.secret);
      const held = d.ads.heldVersions(p.id, TYPE.secret);
      if (!want || !held) return false;
      return [...want.resources.values()].some((r) => held.has(r.name) && held.get(r.name) !== r.version);
    });
    if (behind.length === 0) return;
    if (Date.now() > deadline) throw new Error(`proxies did not converge: ${behind.map((p) => p.id).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
