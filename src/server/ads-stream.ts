/**
 * Stage: server. One ADS stream (SotW or Delta) of one proxy: subscriptions, what the client holds, ACK/NACK and
 * ordering. Pure state machine: requests and snapshot changes go in, encoded responses and events come out. It
 * knows nothing of gRPC (ads-server.ts does the I/O), so every rule here is testable without a socket.
 *
 * Rules (xds_protocol, and shared/design/xds.md):
 * - One response in flight per stream. Types go in PUSH_ORDER (SDS, CDS, EDS, LDS, RDS); a type is sent only when
 *   the previous response was ACKed or NACKed, so clusters exist before the listeners and routes that use them.
 *   One exception: while a CDS response waits, EDS and SDS updates go out. Envoy holds its CDS ACK until updated
 *   clusters have warmed, and warming waits for their endpoints and secrets (xds_protocol, "Resource warming"):
 *   a cluster that turns to mTLS when its service gains mesh endpoints needs secrets the proxy never asked for.
 * - Make before break: stale clusters, endpoints and secrets are kept while everything else converges and are
 *   removed in a second phase, once nothing new is left to send.
 * - A request whose nonce is not the latest one sent for its type is stale and ignored (Delta still applies its
 *   subscription changes, which are incremental and would otherwise be lost).
 * - A NACK (error_detail) parks the type: the rejected content is never re-sent; the next different content is.
 * - SotW: a same-nonce request with different names is a subscription change and is answered.
 * - Delta: `initial_resource_versions` seeds what the client holds, so an unchanged proxy receives nothing.
 */
import type { Snapshot } from '../snapshot/snapshot.js';
import type { EncodedResource } from '../snapshot/resource-cache.js';
import { setVersion } from '../snapshot/canonical.js';
import { PUSH_ORDER, REMOVE_LAST, TYPE, isKnownType, type TypeUrl } from '../xds/type-urls.js';
import { applyDelta, applySotw, emptySubscription, wants, type Subscription } from './subscription.js';
import { boundNackMessage, encodeDeltaResponse, encodeSotwResponse } from './wire.js';
import type { DeltaRequest, NodeInfo, SotwRequest } from './wire.js';

export type Variant = 'sotw' | 'delta';

export interface StreamEvent {
  kind: 'sent' | 'ack' | 'nack' | 'stale';
  typeUrl: TypeUrl;
  nonce: string;
  version: string;
  revision?: string;
  /** Resources carried by the response this event is about (sent, ack, nack). */
  resources?: readonly EncodedResource[];
  removed?: readonly string[];
  bytes?: number;
  /** NACK: the client's error_detail.message, cut to MAX_NACK_MESSAGE_BYTES. */
  message?: string;
  /** NACK: this proxy already rejected this version of this type (e.g. reconnecting in a loop); not logged again. */
  repeat?: boolean;
}

export interface StreamEnv {
  /** The proxy's current snapshot (undefined while the proxy has none). */
  snapshot(proxyId: string): Snapshot | undefined;
  send(bytes: Uint8Array): void;
  event(e: StreamEvent): void;
}

export class StreamError extends Error {
  constructor(
    readonly code: 'INVALID_ARGUMENT' | 'FAILED_PRECONDITION',
    message: string,
  ) {
    super(message);
  }
}

interface Held {
  version: string;
  entry?: EncodedResource;
}

interface Pending {
  nonce: string;
  key: string;
  version: string;
  revision: string;
  /** Delta: name -> entry to add, or null to remove. SotW: the complete new state. */
  changes: Map<string, EncodedResource | null>;
  sotwComplete: boolean;
}

/** A response worked out but not sent yet. */
interface Planned {
  typeUrl: TypeUrl;
  ts: TypeState;
  key: string;
  version: string;
  revision: string;
  changes: Map<string, EncodedResource | null>;
  sotwComplete: boolean;
  resources: EncodedResource[];
  removed: string[];
  missing?: string[];
}

interface TypeState {
  sub: Subscription;
  /** What the client has ACKed, by name. */
  has: Map<string, Held>;
  nonce?: string;
  pending?: Pending;
  mustRespond: boolean;
  lastSentKey?: string;
  parkedKey?: string;
  /** Delta: subscribed names we told the client do not exist. */
  reportedMissing: Set<string>;
  /** Delta: names to send again though the client holds them (the endpoints of a cluster being updated). */
  resend: Set<string>;
}

/** What a warming cluster waits for: sent while its CDS response waits for the ACK Envoy holds back meanwhile. */
const WARMING: ReadonlySet<TypeUrl> = new Set([TYPE.endpoint, TYPE.secret]);

export class AdsStream {
  node?: NodeInfo;
  private readonly types = new Map<TypeUrl, TypeState>();
  /** Responses sent and not yet ACKed or NACKed, by type (more than one only while CDS waits, see above). */
  private readonly inflight = new Map<TypeUrl, string>();
  private nonceSeq = 0;
  private closed = false;

  constructor(
    readonly variant: Variant,
    private readonly env: StreamEnv,
  ) {}

  get proxyId(): string | undefined {
    return this.node?.id;
  }

  close(): void {
    this.closed = true;
  }

  /** Processes one request; throws StreamError for requests the protocol does not allow. */
  handle(req: SotwRequest | DeltaRequest): void {
    if (!this.node) {
      if (!req.node?.id) throw new StreamError('INVALID_ARGUMENT', 'the first request of a stream must carry node.id');
      this.node = req.node;
    }
    if (!isKnownType(req.type_url)) {
      throw new StreamError('INVALID_ARGUMENT', `unsupported type_url "${req.type_url}"`);
    }
    if (this.variant === 'sotw') this.handleSotw(req as SotwRequest);
    else this.handleDelta(req as DeltaRequest);
    this.pump();
  }

  /** Called when this proxy's snapshot may have changed. */
  onSnapshot(): void {
    this.pump();
  }

  private state(typeUrl: TypeUrl): TypeState {
    let s = this.types.get(typeUrl);
    if (!s) {
      const fresh = { mustRespond: false, reportedMissing: new Set<string>(), resend: new Set<string>() };
      s = { sub: emptySubscription(), has: new Map(), ...fresh };
      this.types.set(typeUrl, s);
    }
    return s;
  }

  private handleSotw(req: SotwRequest): void {
    const typeUrl = req.type_url as TypeUrl;
    const ts = this.state(typeUrl);
    if (req.response_nonce === '') {
      // A first request (or a client starting over): answer it with the full state.
      applySotw(ts.sub, req.resource_names);
      ts.mustRespond = true;
      return;
    }
    if (req.response_nonce !== ts.nonce) {
      this.env.event({ kind: 'stale', typeUrl, nonce: req.response_nonce, version: req.version_info });
      return;
    }
    this.settle(typeUrl, ts, req.error_detail?.message);
    if (applySotw(ts.sub, req.resource_names)) ts.mustRespond = true;
  }

  private handleDelta(req: DeltaRequest): void {
    const typeUrl = req.type_url as TypeUrl;
    const ts = this.state(typeUrl);
    const first = !ts.sub.active;
    if (first) {
      for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) ts.has.set(name, { version });
      // Nothing known: answer even when there is nothing to send, so the proxy's initial fetch completes.
      if (Object.keys(req.initial_resource_versions ?? {}).length === 0) ts.mustRespond = true;
    }
    applyDelta(ts.sub, req.resource_names_subscribe, req.resource_names_unsubscribe);
    for (const name of req.resource_names_unsubscribe) {
      ts.has.delete(name);
      ts.reportedMissing.delete(name);
    }
    if (req.response_nonce === '') return;
    if (req.response_nonce !== ts.nonce || !ts.pending) {
      if (req.response_nonce !== ts.nonce) {
        this.env.event({ kind: 'stale', typeUrl, nonce: req.response_nonce, version: '' });
      }
      return;
    }
    this.settle(typeUrl, ts, req.error_detail?.message);
  }

  /** ACK or NACK of the latest response of a type. */
  private settle(typeUrl: TypeUrl, ts: TypeState, nackMessage: string | undefined): void {
    const p = ts.pending;
    if (this.inflight.get(typeUrl) === ts.nonce) this.inflight.delete(typeUrl);
    if (!p) return; // a repeated ACK of a response already settled
    ts.pending = undefined;
    const resources = [...p.changes.values()].filter((e): e is EncodedResource => e !== null);
    if (nackMessage !== undefined) {
      // Never re-send what was rejected: park until the content changes.
      ts.parkedKey = p.key;
      // Bounded here, at the source: the text comes from the client and goes on to logs, status and history.
      const message = boundNackMessage(nackMessage);
      const { nonce, version, revision } = p;
      this.env.event({ kind: 'nack', typeUrl, nonce, version, revision, resources, message });
      return;
    }
    ts.parkedKey = undefined;
    if (p.sotwComplete) ts.has.clear();
    for (const [name, entry] of p.changes) {
      if (entry) ts.has.set(name, { version: entry.version, entry });
      else ts.has.delete(name);
    }
    this.env.event({ kind: 'ack', typeUrl, nonce: p.nonce, version: p.version, revision: p.revision, resources });
  }

  /**
   * The snapshot content (its types map, shared by a snapshot relabelled to a newer revision) for which the last
   * pump found nothing to send: `inSync` answers from it instead of planning every type again after each ACK.
   */
  private quietFor?: Snapshot['types'];

  private pump(): void {
    this.quietFor = undefined;
    if (this.closed || !this.node) return;
    const snap = this.env.snapshot(this.node.id);
    if (!snap) return;
    let sent = false;
    // More than one only after a CDS response (what its warming needs, see maySend).
    for (let next = this.nextResponse(snap); next; next = this.nextResponse(snap)) {
      this.send(next);
      sent = true;
    }
    if (!sent && this.inflight.size === 0) this.quietFor = snap.types;
  }

  /** Whether a response of `typeUrl` may go out now: nothing in flight, or only CDS and what its warming needs. */
  private maySend(typeUrl: TypeUrl): boolean {
    if (this.inflight.size === 0) return true;
    if (this.inflight.has(typeUrl) || !WARMING.has(typeUrl) || !this.inflight.has(TYPE.cluster)) return false;
    return [...this.inflight.keys()].every((t) => t === TYPE.cluster || WARMING.has(t));
  }

  /**
   * The next response to send, in PUSH_ORDER, upserts before removals; undefined when the client is in sync (or
   * when what is left must wait for a response in flight). Nothing is removed while anything is in flight.
   */
  private nextResponse(snap: Snapshot): Planned | undefined {
    const phases = this.inflight.size === 0 ? (['upsert', 'remove'] as const) : (['upsert'] as const);
    for (const phase of phases) {
      for (const typeUrl of PUSH_ORDER) {
        const ts = this.types.get(typeUrl);
        if (!ts?.sub.active || !this.maySend(typeUrl)) continue;
        const planned = this.variant === 'sotw' ? this.planSotw(typeUrl, ts, snap, phase) : this.planDelta(typeUrl, ts, snap, phase);
        if (planned) return planned;
      }
    }
    return undefined;
  }

  /** True when nothing is in flight and nothing is left to send: the client holds its current snapshot. */
  inSync(): boolean {
    if (this.closed || this.inflight.size > 0 || !this.node) return false;
    const snap = this.env.snapshot(this.node.id);
    return snap !== undefined && this.types.size > 0 && this.quietFor === snap.types;
  }

  private planSotw(typeUrl: TypeUrl, ts: TypeState, snap: Snapshot, phase: 'upsert' | 'remove'): Planned | undefined {
    const current = snap.types.get(typeUrl)?.resources ?? new Map<string, EncodedResource>();
    const content = new Map<string, EncodedResource>();
    for (const [name, e] of current) if (wants(ts.sub, name)) content.set(name, e);
    if (phase === 'upsert' && REMOVE_LAST.has(typeUrl)) {
      // Keep what the client holds until the rest has converged (the full state in SotW means "delete" otherwise).
      for (const [name, held] of ts.has) if (!content.has(name) && held.entry && wants(ts.sub, name)) content.set(name, held.entry);
    }
    const list = [...content.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const key = setVersion(list);
    if (key === ts.parkedKey) return undefined;
    if (!ts.mustRespond && key === ts.lastSentKey) return undefined;
    return { typeUrl, ts, key, version: key, revision: snap.revision, changes: content, sotwComplete: true, resources: list, removed: [] };
  }

  private planDelta(typeUrl: TypeUrl, ts: TypeState, snap: Snapshot, phase: 'upsert' | 'remove'): Planned | undefined {
    const typeSnap = snap.types.get(typeUrl);
    const current = typeSnap?.resources ?? new Map<string, EncodedResource>();
    const upserts: EncodedResource[] = [];
    for (const [name, e] of current) {
      if (wants(ts.sub, name) && (ts.has.get(name)?.version !== e.version || ts.resend.has(name))) upserts.push(e);
    }
    const removed: string[] = [];
    if (phase === 'remove' || !REMOVE_LAST.has(typeUrl)) {
      for (const name of ts.has.keys()) if (!current.has(name)) removed.push(name);
    }
    // Tell the client once about names it asked for that do not exist, so it does not wait for them.
    const missing = [...ts.sub.names].filter((n) => !current.has(n) && !ts.has.has(n) && !ts.reportedMissing.has(n));
    removed.push(...missing);
    removed.sort();
    if (upserts.length === 0 && removed.length === 0 && !ts.mustRespond) return undefined;
    const key = setVersion([...upserts, ...removed.map((name) => ({ name, version: '-' }))]);
    if (key === ts.parkedKey) return undefined;
    const changes = new Map<string, EncodedResource | null>();
    for (const e of upserts) changes.set(e.name, e);
    for (const n of removed) changes.set(n, null);
    return { typeUrl, ts, key, version: typeSnap?.version ?? '', revision: snap.revision, changes, sotwComplete: false, resources: upserts, removed, missing };
  }

  private send(p: Planned): void {
    const { typeUrl, ts } = p;
    const nonce = this.nextNonce();
    for (const n of p.missing ?? []) ts.reportedMissing.add(n);
    for (const e of p.resources) ts.resend.delete(e.name);
    if (typeUrl === TYPE.cluster) this.rewarm(p.resources);
    for (const e of p.resources) ts.reportedMissing.delete(e.name);
    const bytes =
      this.variant === 'sotw'
        ? encodeSotwResponse(p.version, typeUrl, nonce, p.resources)
        : encodeDeltaResponse(p.version, typeUrl, nonce, p.resources, p.removed);
    ts.nonce = nonce;
    ts.pending = { nonce, key: p.key, version: p.version, revision: p.revision, changes: p.changes, sotwComplete: p.sotwComplete };
    ts.mustRespond = false;
    ts.lastSentKey = p.key;
    this.inflight.set(typeUrl, nonce);
    this.env.send(bytes);
    this.env.event({ kind: 'sent', typeUrl, nonce, version: p.version, revision: p.revision, resources: p.resources, removed: p.removed, bytes: bytes.length });
  }

  /**
   * A cluster Envoy already has and receives again warms anew and waits for an EDS response for it, even when its
   * endpoints did not change (Envoy asks nothing new: it is subscribed already). So its endpoints go again.
   */
  private rewarm(clusters: readonly EncodedResource[]): void {
    const eds = this.types.get(TYPE.endpoint);
    if (!eds?.sub.active) return;
    for (const c of clusters) {
      if (!eds.has.has(c.name)) continue;
      if (this.variant === 'sotw') eds.mustRespond = true;
      else eds.resend.add(c.name);
    }
  }

  private nextNonce(): string {
    this.nonceSeq += 1;
    return this.nonceSeq.toString(36);
  }

  /** For status: what the client holds per type. */
  held(typeUrl: TypeUrl): ReadonlyMap<string, { version: string }> {
    return this.types.get(typeUrl)?.has ?? new Map();
  }
}
