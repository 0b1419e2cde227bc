/**
 * Wiring only: watch -> compile -> publish -> serve, plus the CA feeding certificates to snapshots. The one place
 * where stages meet. A revision with errors is rejected whole and every proxy keeps its last good snapshot.
 * The parts are modules of their own: the served snapshots with their secrets (served-snapshots.ts), convergence
 * (convergence.ts), root rotation (root-rotation.ts), bootstraps (bootstraps.ts, observing accepted revisions),
 * gateway credentials read from disk and watched (credentials/credential-store.ts; a rotation only republishes
 * secrets).
 */
import * as grpc from '@grpc/grpc-js';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Authority, CaFiles } from '../ca/authority.js';
import { systemClock, type Clock } from '../ca/clock.js';
import { SvidManager } from '../ca/svids.js';
import type { XdsCa } from '../ca/xds-ca.js';
import { compileSourceInSlices, type CompiledProxy, type CompileResult } from '../compiler.js';
import type { Diagnostic, Result } from '../diag/diagnostic.js';
import { diagnosticLine } from '../diag/format.js';
import { controlPlaneIdentity } from '../model/mesh-model.js';
import { MESH_DEFAULTS } from '../policy/types.js';
import { groupOfInstance, type RegisteredInstance } from '../model/groups.js';
import { AdsServer, DEFAULT_ADS_OPTIONS, type AdmitContext, type Authenticated } from '../server/ads-server.js';
import { GroupGenerations } from '../server/group-generations.js';
import { bearerToken, ProxyTokens } from '../server/proxy-auth.js';
import { ServingCertificate } from '../server/serving-certificate.js';
import { WorkloadRemovals } from '../server/workload-removals.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { readDirectoryInSlices } from '../source/directory.js';
import { GitSource } from '../source/git.js';
import type { PolicySource } from '../source/source-file.js';
import { watchDirectory } from '../source/watch.js';
import { SHORT_NAME } from '../xds/type-urls.js';
import { ConvergenceTracker, type ConvergenceEntry, type ConvergenceStatus } from './convergence.js';
import { CredentialStore } from '../credentials/credential-store.js';
import { credentialNamesOf, credentialUsesOf } from '../ir/credentials.js';
import type { CredentialLookup } from '../model/gateways.js';
import type { Logger } from './logger.js';
import { HistoryLog } from './history.js';
import { followRotationStep, rotateRoot, waitForSecretsAcked } from './root-rotation.js';
import { ServedSnapshots } from './served-snapshots.js';
import { ADDRESS_METADATA, instanceAddress, Registrations } from './registrations.js';
import { openState, readLastGood, writeLastGood } from './state-dir.js';
import { Replica, type StoreSettings } from '../store/replica.js';
import { Telemetry } from './telemetry.js';
import { instrument } from './instrumentation.js';

export interface ControlPlaneSettings {
  /** A policy directory (watched), unless `git` is set. */
  configDir: string;
  /** A Git repository (local path or URL) to follow instead of a directory. */
  git?: { repo: string; branch: string; subdir: string; pollMs: number };
  /** host:port for xDS over TLS (certificate from the mesh CA). */
  xdsAddress: string;
  /** host:port for plaintext xDS; only when explicitly enabled (tests, proxyless gRPC clients). */
  xdsPlaintextAddress?: string;
  stateDir: string;
  /** Debounce of policy changes; when unset, the Mesh's `xds.debounce` (default 100 ms quiet, 1 s at most). */
  debounceQuietMs?: number;
  debounceMaxMs?: number;
  maxNewStreamsPerSecond: number;
  watch: boolean;
  /** A user-supplied CA (root or intermediate); by default a root is generated in the state directory. */
  ca?: CaFiles;
  /** OTLP/HTTP endpoint for the control plane's traces. */
  otlpTracesEndpoint?: string;
  clock?: Clock;
  /** Lifetime of the xDS server certificate (default 90 days); it is renewed at half of it, without a restart. */
  xdsCertTtlMs?: number;
  /** Where Gateways' TLS credentials are (`<dir>/<credentialName>/tls.crt`, `tls.key`, `ca.crt`); never in Git. */
  credentialsDir?: string;
  /** How long a registered instance stays after its stream went away (default 30 s). */
  registrationGraceMs?: number;
  /** Share state with other replicas through etcd (store/replica.ts); unset: the embedded single process. */
  store?: StoreSettings;
}

export interface RevisionRecord {
  revision: string;
  status: 'accepted' | 'rejected';
  at: string;
  compileMs: number;
  diagnostics: Diagnostic[];
  proxies: number;
}

const HISTORY_LIMIT = 50;
export { controlPlaneIdentity };
const XDS_CERT_TTL_MS = 90 * 24 * 3_600_000;
export const REGISTRATION_GRACE_MS = 30_000;

interface Current {
  result: CompileResult;
  /** The source it was compiled from, and the registered instances compiled in (a registration recompiles them). */
  source: Result<PolicySource>;
  registered: readonly RegisteredInstance[];
  /** Ids of the committed WorkloadEntries (registered names may not take them). */
  committed: ReadonlySet<string>;
  /** Snapshots without secrets, as compiled. */
  base: Map<string, Snapshot>;
  /** What is served: base plus each proxy's secrets. */
  snapshots: Map<string, Snapshot>;
}

export class ControlPlane {
  readonly ads: AdsServer;
  /** Gateway TLS credentials read from --credentials-dir, and watched. */
  credentials?: CredentialStore;
  private readonly served = new ServedSnapshots((name) => this.credentials?.get(name));
  private readonly clock: Clock;
  private stopWatching?: () => void;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly git?: GitSource;
  authority!: Authority;
  svids!: SvidManager;
  tokens!: ProxyTokens;
  /** The anchor bootstraps trust, and the xDS server certificate it signs (see ca/xds-ca.ts). */
  xdsCa!: XdsCa;
  serving?: ServingCertificate;
  removals!: WorkloadRemovals;
  registrations!: Registrations;
  groupGenerations!: GroupGenerations;
  /** The shared store of replicas (`--store`); undefined for the embedded single process. */
  replica?: Replica;
  /** The last compile a registration caused (tests and the bench read how many proxies it compiled). */
  lastRegistrationCompile?: { instances: number; compiled: number; changed: number; ms: number };
  current?: Current;
  readonly revisions: RevisionRecord[] = [];
  /** Observers of each accepted revision, called once it is published (e.g. the bootstrap writer of `serve`). */
  readonly onAccepted: ((result: CompileResult) => void)[] = [];
  /** Observers of a change of what bootstraps trust (an xDS CA rotation step), so bootstraps can be rewritten. */
  readonly onBootstrapTrustChanged: (() => void)[] = [];
  private readonly converging: ConvergenceTracker;
  xdsPort = 0;
  xdsPlaintextPort = 0;
  readonly startedAt = new Date().toISOString();

  constructor(
    readonly settings: ControlPlaneSettings,
    private readonly log: Logger,
  ) {
    this.clock = settings.clock ?? systemClock;
    if (settings.git) this.git = new GitSource({ ...settings.git, cacheDir: path.join(settings.stateDir, 'git') });
    if (settings.credentialsDir) {
      const onChange = (names: string[]) =>
        void this.enqueue(() => this.onCredentialsChanged(names)).catch(() => undefined);
      this.credentials = new CredentialStore({ dir: settings.credentialsDir, log, onChange });
    }
    this.ads = new AdsServer(
      {
        ...DEFAULT_ADS_OPTIONS,
        maxNewStreamsPerSecond: settings.maxNewStreamsPerSecond,
        authenticate: (md) => this.authenticate(md),
        admit: (id, ctx) => this.admit(id, ctx),
        closed: (id) => this.onStreamClosed(id),
        awaited: (id) => this.registrations?.get(id) !== undefined,
      },
      log,
    );
    this.history = new HistoryLog(path.join(settings.stateDir, 'history.jsonl'));
    this.ads.registry.onSync = (p) => {
      if (!p.connected) this.history.append({ kind: 'disconnected', proxy: p.id });
      else if (p.revision) this.history.append({ kind: 'synced', proxy: p.id, revision: p.revision });
      else this.history.append({ kind: 'behind', proxy: p.id });
      this.converging.schedule();
    };
    this.ads.registry.onRelabel = (ids, from) => {
      const revision = this.current?.result.revision;
      if (revision) this.history.append({ kind: 'relabelled', revision, from, proxies: ids });
    };
    this.ads.registry.onConnect = (id) => this.history.append({ kind: 'connected', proxy: id });
    this.ads.observers.push((proxy, e) => {
      if (e.kind === 'nack' && !e.repeat)
        this.history.append({
          kind: 'nack',
          proxy,
          type: SHORT_NAME[e.typeUrl],
          message: e.message ?? '',
          ...(e.revision ? { revision: e.revision } : {}),
        });
    });
    this.telemetry = new Telemetry(
      settings.otlpTracesEndpoint ? { otlpTracesEndpoint: settings.otlpTracesEndpoint } : {},
    );
    const revision = () => this.current?.result.revision;
    this.converging = new ConvergenceTracker(this.ads.registry, revision, this.telemetry, log);
    instrument({
      ads: this.ads,
      telemetry: this.telemetry,
      revision,
      certificates: () => this.svids?.status() ?? [],
      now: () => this.clock.now(),
    });
  }

  /** Per accepted revision: when it was accepted and when every connected proxy first held it. */
  get convergence(): ReadonlyMap<string, ConvergenceEntry> {
    return this.converging.entries;
  }

  readonly telemetry: Telemetry;
  readonly history: HistoryLog;

  async start(): Promise<void> {
    mkdirSync(this.settings.stateDir, { recursive: true, mode: 0o700 });
    const ca = this.settings.ca ? { ca: this.settings.ca } : {};
    if (this.settings.store) {
      const create = (dir: string) => openState({ stateDir: dir, clock: this.clock, ...ca });
      this.replica = await Replica.join(this.settings.store, {
        stateDir: this.settings.stateDir,
        log: this.log,
        create,
      });
    }
    const state = await openState({ stateDir: this.settings.stateDir, clock: this.clock, ...ca });
    [this.authority, this.xdsCa, this.tokens] = [state.authority!, state.xdsCa, state.tokens];
    this.removals = WorkloadRemovals.open(this.settings.stateDir);
    await this.replica?.shareRemovals(this.removals);
    this.groupGenerations = GroupGenerations.open(this.settings.stateDir);
    await this.replica?.shareGroups(this.groupGenerations, (group) => void this.enqueue(async () => this.evict(group)));
    const grace = this.settings.registrationGraceMs ?? REGISTRATION_GRACE_MS;
    // With replicas the store holds the registrations (under leases), not <state-dir>/registrations.json.
    this.registrations = this.replica ? new Registrations(grace) : Registrations.open(this.settings.stateDir, grace);
    this.registrations.onChange = (why) => this.onRegistrationsChanged(why);
    await this.replica?.followRegistrations(this.registrations);
    this.svids = new SvidManager(
      this.authority,
      this.clock,
      { ttlMs: 24 * 3_600_000, rotateAtFraction: 0.5, jitterFraction: 0.1 },
      (ids) => this.enqueue(() => this.onCertificatesRotated(ids)),
      Math.random,
      this.replica?.svidSource(this.authority, this.clock, () => this.svids),
    );
    await this.replica?.followSvids(this.svids);
    const replica = this.replica;
    const follow = (hash: string) => followRotationStep(this.rotationDeps(), () => replica!.acknowledge(hash), 60_000);
    await replica?.followTrust(this.settings.stateDir, (hash) => {
      void this.enqueue(async () => this.followXdsCa());
      void follow(hash).catch((err) =>
        this.log.error('following a root rotation step failed', { trust: hash, error: (err as Error).message }),
      );
    });
    await this.replica?.startStatus(this.ads.registry);
    await this.reload().catch(() => undefined);
    await this.recoverLastGood();
    const mesh = this.current?.result.model?.mesh;
    const ttl = this.settings.xdsCertTtlMs ?? XDS_CERT_TTL_MS;
    this.serving = new ServingCertificate({
      issue: (id) => this.xdsCa.issueServerCertificate(id, ttl),
      identity: controlPlaneIdentity(mesh?.trustDomain ?? 'cluster.local', mesh?.rootNamespace ?? 'istio-system'),
      clock: this.clock,
      renewAtFraction: 0.5,
      log: this.log,
    });
    this.xdsPort = await this.ads.listen(this.settings.xdsAddress, this.serving.credentials());
    this.log.info('xds listening (TLS)', { address: this.settings.xdsAddress, port: this.xdsPort });
    if (this.settings.xdsPlaintextAddress) {
      this.xdsPlaintextPort = await this.ads.listen(this.settings.xdsPlaintextAddress);
      this.log.warn('plaintext xds enabled', {
        address: this.settings.xdsPlaintextAddress,
        port: this.xdsPlaintextPort,
      });
    }
    if (this.settings.watch && this.git) {
      const timer = setInterval(() => void this.reload().catch(() => undefined), this.settings.git!.pollMs);
      this.stopWatching = () => clearInterval(timer);
    } else if (this.settings.watch) {
      const mesh = this.current?.result.model?.mesh ?? MESH_DEFAULTS;
      const quiet = this.settings.debounceQuietMs ?? mesh.debounceQuietMs;
      const max = this.settings.debounceMaxMs ?? mesh.debounceMaxMs;
      this.stopWatching = watchDirectory(
        this.settings.configDir,
        () => void this.reload().catch(() => undefined),
        quiet,
        max,
      );
    }
  }

  async stop(): Promise<void> {
    this.stopWatching?.();
    this.credentials?.stop();
    this.registrations?.stop();
    this.svids?.stop();
    this.serving?.stop();
    await this.queue.catch(() => undefined);
    await this.ads.close();
    this.history.flush();
    await this.replica?.close();
    await this.telemetry.shutdown();
  }

  /** Serializes reloads and rotations: one at a time, in order. */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch((err) => this.log.error('control plane task failed', { error: (err as Error).stack }));
    return next;
  }

  /**
   * Reads, compiles and (if clean) publishes the policy directory. Resolves to the revision's record. `force`
   * compiles an unchanged revision again (a credential it was rejected for may be valid now).
   */
  reload(force = false): Promise<RevisionRecord> {
    return this.enqueue(() =>
      this.telemetry.span('chancery.revision', async (span) => {
        const r = await this.compileAndPublish(undefined, force);
        span.setAttributes({
          'chancery.revision': r.revision,
          'chancery.status': r.status,
          'chancery.proxies': r.proxies,
        });
        return r;
      }),
    );
  }

  /** The newest revision of the source (fetching first for a remote Git repository). */
  private async readLatest(): Promise<Result<PolicySource>> {
    if (!this.git) return readDirectoryInSlices(this.settings.configDir);
    await this.git.fetch();
    return this.git.read(await this.git.head());
  }

  private async compileAndPublish(at?: Result<PolicySource>, force = false): Promise<RevisionRecord> {
    const t0 = performance.now();
    let src: Result<PolicySource>;
    try {
      src = at ?? (await this.readLatest());
    } catch (err) {
      this.log.error('cannot read the policy source; proxies keep the last good configuration', {
        source: this.sourceName(),
        error: (err as Error).message,
      });
      throw err;
    }
    const last = this.revisions[this.revisions.length - 1];
    const unchanged = last && last.revision === src.value.revision && src.diagnostics.length === 0;
    if (!at && !force && unchanged) return last; // nothing changed
    // Compiled and strictly encoded exactly as `chancery check` does (src/compiler.ts).
    const registered = this.registrations.list();
    const options = { credentials: this.credentialLookup(), registered };
    const result = await compileSourceInSlices(src.value, src.diagnostics, this.current?.result, options);
    const diagnostics = result.diagnostics;
    const base = result.ok ? result.snapshots : undefined;
    const compileMs = Math.round((performance.now() - t0) * 10) / 10;
    const record: RevisionRecord = {
      revision: result.revision,
      status: base ? 'accepted' : 'rejected',
      at: new Date(this.clock.now()).toISOString(),
      compileMs,
      diagnostics,
      proxies: base?.size ?? 0,
    };
    this.revisions.push(record);
    if (this.revisions.length > HISTORY_LIMIT) this.revisions.shift();
    const errors = diagnostics.filter((d) => d.severity === 'error').map(diagnosticLine);
    this.telemetry.revisions.add(1, { status: record.status });
    this.history.append({
      kind: 'revision',
      revision: record.revision,
      status: record.status,
      errors,
    });
    this.telemetry.compileTime.record(compileMs / 1000, { status: record.status });
    if (!base || !result.model) {
      this.log.warn('revision rejected; proxies keep the last good configuration', {
        revision: result.revision,
        kept: this.current?.result.revision,
        errors,
      });
      return record;
    }
    this.converging.accepted(result.revision);
    const changed = await this.accept(result, base, src, registered);
    this.rememberLastGood(result.revision);
    this.converging.check();
    for (const observe of this.onAccepted) observe(result);
    const counts = { proxies: base.size, compiled: result.compiled, changed: changed.length };
    this.log.info('revision accepted', {
      revision: result.revision,
      ...counts,
      compileMs,
      encodes: result.cache.encodes,
    });
    return record;
  }

  /**
   * Makes a clean compile result current and publishes it (a new revision, or the same one with other registered
   * instances): certificates for its identities, removals of committed workloads, registrations reconciled.
   * Returns the proxies whose served snapshot changed.
   */
  private async accept(
    result: CompileResult,
    base: Map<string, Snapshot>,
    source: Result<PolicySource>,
    registered: readonly RegisteredInstance[],
  ): Promise<string[]> {
    const model = result.model!;
    const mesh = model.mesh;
    const self = controlPlaneIdentity(mesh.trustDomain, mesh.rootNamespace);
    this.authority.reserve([self]); // the model refuses it too (CH0409); this is the CA's own line
    this.serving?.setIdentity(self);
    const cert = { ttlMs: mesh.certificateTtlMs, rotateAtFraction: mesh.rotateAtFraction, jitterFraction: 0.1 };
    const settingsChanged = this.svids.configure(cert);
    const identities = [...new Set(model.workloads.map((w) => w.identity))];
    const fresh = new Set(await this.svids.sync(identities));
    if (settingsChanged) await this.svids.reissue(identities.filter((id) => !fresh.has(id)));
    const previous = this.current;
    const committed = new Set(model.workloads.filter((w) => !w.registered).map((w) => w.id));
    // Before publishing (which closes removed workloads' streams): their old tokens are refused from now on.
    // Registered instances come and go with their group token, which stays valid: they are not removals.
    const removed = this.removals.update(committed, this.clock.now());
    if (removed.length > 0) this.log.info('workloads removed; their tokens are refused', { workloads: removed });
    this.current = { result, base, snapshots: previous?.snapshots ?? new Map(), source, registered, committed };
    const changed = this.publishWithSecrets(
      [...base].filter(([id, snap]) => previous?.base.get(id)?.types !== snap.types).map(([id]) => id),
    );
    const generationOf = (g: string) => this.groupGenerations.generation(g);
    const evicted = this.registrations.reconcile(model.groups, (id) => committed.has(id), generationOf);
    if (evicted.length > 0) this.log.info('registered workloads evicted', { workloads: evicted });
    if (registered !== previous?.registered || evicted.length > 0) this.registrations.save();
    return changed;
  }

  private registrationCompileQueued = false;

  /** A proxy's stream is gone: a registered instance starts its grace period; one that already left is forgotten. */
  private onStreamClosed(id: string): void {
    this.registrations.disconnected(id);
    const cur = this.current;
    const left = cur && !this.registrations.get(id) && !cur.committed.has(id);
    if (left && groupOfInstance(cur.result.model!.groups, id)) this.ads.registry.forget(id);
  }

  /** Registrations changed: record it, and compile them in once the current task is done (batched). */
  private onRegistrationsChanged(why: { added: string[]; removed: string[] }): void {
    for (const id of why.added) {
      const i = this.registrations.get(id)!;
      this.history.append({ kind: 'registered', proxy: id, group: i.group, address: i.address });
    }
    for (const id of why.removed) {
      this.history.append({ kind: 'deregistered', proxy: id, reason: 'left' });
      this.ads.registry.forget(id); // status would otherwise keep every instance that ever ran
    }
    if (this.registrationCompileQueued) return;
    this.registrationCompileQueued = true;
    void this.enqueue(() => this.compileRegistrations());
  }

  /**
   * The current revision compiled again with the registered instances: the same compiler, incremental, so only
   * the proxies that reach a changed service (and the new instances) are compiled. A compile that fails refuses
   * the instances that joined since the last one.
   */
  private async compileRegistrations(): Promise<void> {
    this.registrationCompileQueued = false;
    const cur = this.current;
    const registered = this.registrations.list();
    if (!cur || sameInstances(registered, cur.registered)) return;
    const t0 = performance.now();
    const options = { credentials: this.credentialLookup(), registered };
    const result = await compileSourceInSlices(cur.source.value, cur.source.diagnostics, cur.result, options);
    const diagnostics = [...result.diagnostics];
    const base = result.ok ? result.snapshots : undefined;
    if (!base) return this.refuseRegistrations(registered, cur.registered, diagnostics);
    const changed = await this.accept(result, base, cur.source, registered);
    this.converging.check();
    const ms = Math.round((performance.now() - t0) * 10) / 10;
    const instances = registered.length;
    this.lastRegistrationCompile = { instances, compiled: result.compiled, changed: changed.length, ms };
    this.log.info('registrations compiled', { revision: result.revision, ...this.lastRegistrationCompile });
  }

  /** A compile with new instances failed: they are refused (their streams closed), the rest stays as it was. */
  private refuseRegistrations(
    registered: readonly RegisteredInstance[],
    before: readonly RegisteredInstance[],
    diagnostics: Diagnostic[],
  ): void {
    const had = new Set(before.map((r) => `${r.id}@${r.address}`));
    const refused = registered.filter((r) => !had.has(`${r.id}@${r.address}`)).map((r) => r.id);
    const errors = diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.code} ${d.message}`);
    this.log.warn('registration refused: the configuration with it does not compile', { workloads: refused, errors });
    const why = `registration refused: ${errors[0] ?? 'invalid configuration'}`;
    for (const id of this.registrations.remove(refused)) this.ads.disconnect(id, grpc.status.FAILED_PRECONDITION, why);
  }

  /** How far the proxies are with a revision. */
  convergenceOf(revision: string): ConvergenceStatus {
    return this.converging.of(revision);
  }

  sourceName(): string {
    return this.git ? this.git.describe() : this.settings.configDir;
  }

  private rememberLastGood(revision: string): void {
    writeLastGood(this.settings.stateDir, { source: this.sourceName(), revision });
  }

  /**
   * After a restart whose newest revision is rejected, serve the last good one again: for Git it is recompiled from
   * the repository at that commit (a plain directory keeps no history, so there the proxies keep their own config).
   */
  private async recoverLastGood(): Promise<void> {
    if (this.current || !this.git) return;
    const saved = readLastGood(this.settings.stateDir, this.log);
    if (!saved || saved.source !== this.sourceName()) return;
    this.log.warn('newest revision rejected at start; serving the last good revision', { revision: saved.revision });
    await this.enqueue(async () => this.compileAndPublish(await this.git!.read(saved.revision)));
  }

  /** Rebuilds the served snapshots of `ids` from their base and current certificates, and publishes. */
  private publishWithSecrets(ids: string[]): string[] {
    const cur = this.current!;
    const workloads = new Map(cur.result.model!.workloads.map((w) => [w.id, w]));
    const proxy = (id: string) => ({
      certificate: this.svids.get(workloads.get(id)!.identity),
      credentials: credentialUsesOf(cur.result.proxies.get(id)!.ir),
    });
    cur.snapshots = this.served.next(cur.base, cur.snapshots, ids, this.authority.trustBundlePem(), proxy);
    return this.ads.publish(cur.snapshots);
  }

  /** What the compiler learns of credentials: the store's, or, without --credentials-dir, that there are none. */
  private credentialLookup(): CredentialLookup {
    const store = this.credentials;
    if (store) return (name) => store.check(name);
    const problem = 'serve was started without --credentials-dir: this server cannot terminate TLS (handshakes fail)';
    return () => ({ ok: false, problem, unavailable: true });
  }

  /**
   * Credentials rotated on disk: the gateways that use them get the new secrets (no recompile). A revision that
   * was rejected may have been waiting for one, so it is compiled again.
   */
  private async onCredentialsChanged(names: string[]): Promise<void> {
    if (this.revisions[this.revisions.length - 1]?.status === 'rejected') {
      this.log.info('credentials changed; compiling the rejected revision again', { credentials: names });
      await this.compileAndPublish(undefined, true);
      return;
    }
    if (!this.current) return;
    const set = new Set(names);
    const uses = ([, p]: [string, CompiledProxy]) => credentialNamesOf(p.ir).some((n) => set.has(n));
    const ids = [...this.current.result.proxies].filter(uses).map(([id]) => id);
    const changed = this.publishWithSecrets(ids);
    this.log.info('credentials rotated', { credentials: names, proxies: changed.length });
  }

  private async onCertificatesRotated(identities: string[]): Promise<void> {
    if (!this.current) return;
    const set = new Set(identities);
    const ids = this.current.result.model!.workloads.filter((w) => set.has(w.identity)).map((w) => w.id);
    const changed = this.publishWithSecrets(ids);
    this.log.info('certificates rotated', { identities: identities.length, proxies: changed.length });
  }

  /** Root rotation without restarts (root-rotation.ts): each step waits until every proxy ACKed the last one's. */
  rotateRoot(waitMs = 60_000): Promise<void> {
    const replica = this.replica;
    if (!replica) return rotateRoot(this.rotationDeps(), waitMs);
    // With replicas: once at a time across them, each step acknowledged by every replica (store/shared-rotation.ts).
    const shareStep = () => replica.shareRotationStep(this.settings.stateDir, waitMs);
    return replica.exclusively('root-rotation', () => rotateRoot({ ...this.rotationDeps(), shareStep }, waitMs));
  }

  private rotationDeps() {
    return {
      authority: this.authority,
      svids: this.svids,
      ads: this.ads,
      enqueue: <T>(fn: () => Promise<T>) => this.enqueue(fn),
      idle: () => this.queue,
      republishSecrets: () => void this.publishWithSecrets([...(this.current?.base.keys() ?? [])]),
    };
  }

  /**
   * Rotates what bootstraps trust (ca/xds-ca.ts): `begin` adds the next xDS CA to every bootstrap written from then
   * on; once every Envoy runs such a bootstrap, `finish` makes it current and the server certificate follows at once.
   */
  rotateXdsCa(step: 'begin' | 'finish'): Promise<ReturnType<XdsCa['status']>> {
    return this.enqueue(async () => {
      if (step === 'begin') {
        this.xdsCa.beginRotation();
      } else {
        this.xdsCa.finishRotation();
        this.serving?.renew();
      }
      this.log.info(`xds CA rotation: ${step}`, this.xdsCa.status());
      for (const observe of this.onBootstrapTrustChanged) observe();
      await this.replica?.shareTrust(this.settings.stateDir);
      return this.xdsCa.status();
    });
  }

  /** Replicas: another replica made an xDS CA rotation step; this one serves and writes bootstraps the same way. */
  private followXdsCa(): void {
    const { changed, switched } = this.xdsCa.reload();
    if (!changed) return;
    if (switched) this.serving?.renew();
    this.log.info('xds CA rotation step taken from another replica', this.xdsCa.status());
    for (const observe of this.onBootstrapTrustChanged) observe();
  }

  /** Resolves when every connected proxy has ACKed the secrets of its current snapshot. */
  waitForSecretsAcked(timeoutMs: number): Promise<void> {
    return waitForSecretsAcked(this.rotationDeps(), timeoutMs);
  }

  /** A bootstrap token for a workload (see server/proxy-auth.ts). */
  issueToken(nodeId: string, ttlSeconds = 30 * 24 * 3600): Promise<string> {
    return this.tokens.issue(nodeId, ttlSeconds, this.clock.now());
  }

  /** A group token for instances of `group` (`namespace/name`), in the group's current generation. */
  issueGroupToken(group: string, ttlSeconds = 30 * 24 * 3600): Promise<string> {
    return this.tokens.issueGroup(group, this.groupGenerations.generation(group), ttlSeconds, this.clock.now());
  }

  /**
   * Revokes every group token of `group` issued so far (one more generation in <state-dir>/groups.json) and
   * removes the instances that registered with them.
   */
  revokeGroup(group: string): Promise<{ group: string; generation: number; evicted: string[] }> {
    return this.enqueue(async () => {
      const generation = this.groupGenerations.revoke(group, this.clock.now());
      const evicted = this.evict(group);
      this.log.info('group tokens revoked', { group, generation, evicted });
      return { group, generation, evicted };
    });
  }

  /** Removes the instances of `group` registered with a revoked generation, and closes their streams. */
  private evict(group: string): string[] {
    const generation = this.groupGenerations.generation(group);
    const stale = this.registrations.all().filter((i) => i.group === group && i.generation !== generation);
    const evicted = this.registrations.remove(stale.map((i) => i.id));
    for (const id of evicted) this.ads.disconnect(id, grpc.status.PERMISSION_DENIED, 'group token revoked');
    return evicted;
  }

  private async authenticate(md: grpc.Metadata): Promise<Authenticated | (Refused & { reason: string })> {
    const token = bearerToken(md.get('authorization'));
    if (!token)
      return { ok: false, code: grpc.status.UNAUTHENTICATED, message: 'unauthenticated', reason: 'no bearer token' };
    const now = this.clock.now();
    if (ProxyTokens.isGroupToken(token)) {
      const g = await this.tokens.verifyGroup(token, now, (group) => this.groupGenerations.generation(group));
      if (!g.ok) return { ok: false, code: grpc.status.UNAUTHENTICATED, message: 'unauthenticated', reason: g.reason };
      return { ok: true, registers: { group: g.group, generation: g.generation } };
    }
    const v = await this.tokens.verify(token, now, (id) => this.removals.removedAt(id));
    if (!v.ok) return { ok: false, code: grpc.status.UNAUTHENTICATED, message: 'unauthenticated', reason: v.reason };
    return { ok: true, nodeId: v.nodeId };
  }

  private admit(id: string, ctx: AdmitContext): Admitted {
    if (ctx.registers) return this.admitRegistration(id, ctx, ctx.registers);
    // A registered name is its group token's: a workload token never serves it.
    const denied = { ok: false, code: grpc.status.PERMISSION_DENIED, message: 'permission denied' } as const;
    if (this.registrations.get(id)) return denied;
    if (!this.current) return { ok: true }; // nothing accepted yet: hold the stream until a revision is
    if (this.current.snapshots.has(id)) return { ok: true };
    return {
      ok: false,
      code: grpc.status.NOT_FOUND,
      message: `no workload "${id}" in revision ${this.current.result.revision}`,
    };
  }

  /** A stream with a group token: registers its node id into the group (its snapshot follows the next compile). */
  private admitRegistration(id: string, ctx: AdmitContext, grant: { group: string; generation: number }): Admitted {
    const cur = this.current;
    if (!cur) return { ok: false, code: grpc.status.UNAVAILABLE, message: 'no accepted revision yet; retry' };
    if (this.replica && !this.replica.available && !this.registrations.get(id)) {
      const message = 'registration refused: the shared store (etcd) is unreachable; retry once it is back';
      return { ok: false, code: grpc.status.UNAVAILABLE, message };
    }
    const address = instanceAddress(ctx.node.metadata, ctx.peer);
    const message = `registration needs an IP address in node metadata ${ADDRESS_METADATA}`;
    if (!address) return { ok: false, code: grpc.status.INVALID_ARGUMENT, message };
    const req = { id, group: grant.group, generation: grant.generation, address };
    const v = this.registrations.register(req, cur.result.model!.groups, (x) => cur.committed.has(x));
    if (v.ok) return { ok: true };
    this.log.warn('registration refused', { proxy: id, group: grant.group, reason: v.reason });
    return { ok: false, code: grpc.status[v.code], message: `registration refused: ${v.reason}` };
  }
}

type Refused = { ok: false; code: grpc.status; message: string };
type Admitted = { ok: true } | Refused;

/** Whether two registration lists hold the same instances at the same addresses. */
function sameInstances(a: readonly RegisteredInstance[], b: readonly RegisteredInstance[]): boolean {
  const same = (r: RegisteredInstance, s: RegisteredInstance) =>
    r.id === s.id && r.address === s.address && r.group === s.group;
  return a === b || (a.length === b.length && a.every((r, i) => same(r, b[i])));
}
