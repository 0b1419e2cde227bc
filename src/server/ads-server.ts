/**
 * Stage: server. The gRPC side of ADS: accepts Delta and SotW streams, authenticates them and then admits them at a
 * bounded rate (admission.ts), feeds requests to AdsStream state machines and writes their responses, and wakes the
 * streams of proxies whose snapshot changed. One live stream per node id: a newer authenticated stream replaces the
 * older one, which is closed. A stream whose proxy has no snapshot any more (its workload was removed) is closed.
 * Knows snapshots only through the SnapshotStore; knows nothing of policies.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../app/logger.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { TypeUrl } from '../xds/type-urls.js';
import { Admission, RefusalLog } from './admission.js';
import { AdsStream, StreamError, type StreamEvent, type Variant } from './ads-stream.js';
import { ProxyRegistry } from './proxy-registry.js';
import { ADS_DEFINITION, MAX_REQUEST_BYTES, isMalformed } from './wire.js';
import type { DeltaRequest, Malformed, NodeInfo, SotwRequest } from './wire.js';

export interface AdsServerOptions {
  /**
   * New streams admitted per second (token bucket), charged only once a stream's credentials verified; excess
   * streams get RESOURCE_EXHAUSTED and retry.
   */
  maxNewStreamsPerSecond: number;
  /** Attempts that fail authentication, per second, refused with their own code; beyond: RESOURCE_EXHAUSTED. */
  maxUnauthenticatedPerSecond?: number;
  /** Refusals are logged once per kind per interval, then summarized with counts. */
  refusalLogIntervalMs?: number;
  keepaliveMs: number;
  /** Streams are closed after this age (with a grace period) so proxies rebalance across replicas. */
  maxConnectionAgeMs: number;
  /**
   * Checks the caller's credentials when a stream opens; resolves to the node id the caller may act as. Refusals
   * carry a code and a message that reveals nothing (the reason is logged).
   */
  authenticate(metadata: grpc.Metadata): Promise<Authenticated | NotAuthenticated>;
  /**
   * Decides whether a proxy id may be served at all (unknown workloads are refused), from the first request's
   * node, the connection's peer address and what the credentials allow (a group token: registering).
   */
  admit(proxyId: string, ctx: AdmitContext): { ok: true } | { ok: false; code: grpc.status; message: string };
  /** The live stream of a node ended and no newer stream of it took over. */
  closed?(proxyId: string): void;
  /** Whether a proxy without a snapshot will get one soon (its registration is being compiled): kept open. */
  awaited?(proxyId: string): boolean;
}

/** What a stream's credentials allow: one node id, any (undefined), or registering into a group (checked by admit). */
export interface Authenticated {
  ok: true;
  nodeId?: string;
  registers?: { group: string; generation: number };
}

export interface NotAuthenticated {
  ok: false;
  code: grpc.status;
  message: string;
  reason: string;
}

export interface AdmitContext {
  node: NodeInfo;
  peer: string;
  registers?: { group: string; generation: number };
}

export const DEFAULT_ADS_OPTIONS: Omit<AdsServerOptions, 'admit' | 'authenticate'> = {
  maxNewStreamsPerSecond: 100,
  keepaliveMs: 30_000,
  maxConnectionAgeMs: 30 * 60_000,
};

/** Where streams read their proxy's snapshot. */
export class SnapshotStore {
  private snapshots = new Map<string, Snapshot>();

  get(proxyId: string): Snapshot | undefined {
    return this.snapshots.get(proxyId);
  }

  /** Replaces all snapshots; returns the ids whose snapshot version changed (added, changed or removed). */
  replace(next: Map<string, Snapshot>): string[] {
    const changed: string[] = [];
    for (const [id, s] of next) if (this.snapshots.get(id)?.version !== s.version) changed.push(id);
    for (const id of this.snapshots.keys()) if (!next.has(id)) changed.push(id);
    this.snapshots = next;
    return changed;
  }

  ids(): string[] {
    return [...this.snapshots.keys()];
  }
}

type Call = grpc.ServerDuplexStream<SotwRequest | DeltaRequest | Malformed, Uint8Array>;

interface Live {
  stream: AdsStream;
  call: Call;
  /** Responses handed to gRPC and not yet flushed (graceful shutdown waits for them). */
  io: { writing: number };
  closed: boolean;
}

export class AdsServer {
  readonly snapshots = new SnapshotStore();
  readonly registry = new ProxyRegistry();
  private readonly server: grpc.Server;
  private readonly live = new Set<Live>();
  /** The one live stream of each node id. */
  private readonly byNode = new Map<string, Live>();
  private readonly admission: Admission;
  readonly refusals: RefusalLog;
  /** Per proxy and type, the version it last NACKed: a repeat (a reconnect loop) is not logged again. */
  private readonly nacked = new Map<string, Map<string, string>>();
  private draining = false;
  /** streamsRejected: authenticated streams over the new-stream budget; unauthenticated: failed authentication. */
  readonly counters = {
    streamsRejected: 0,
    unauthenticated: 0,
    replaced: 0,
    removed: 0,
    staleRequests: 0,
    malformed: 0,
  };

  constructor(
    private readonly opts: AdsServerOptions,
    private readonly log: Logger,
  ) {
    this.admission = new Admission({
      authenticatedPerSecond: opts.maxNewStreamsPerSecond,
      unauthenticatedPerSecond: opts.maxUnauthenticatedPerSecond ?? opts.maxNewStreamsPerSecond,
    });
    this.refusals = new RefusalLog(log, opts.refusalLogIntervalMs);
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': MAX_REQUEST_BYTES,
      'grpc.keepalive_time_ms': opts.keepaliveMs,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 5_000,
      'grpc.max_connection_age_ms': opts.maxConnectionAgeMs,
      'grpc.max_connection_age_grace_ms': 60_000,
    });
    this.server.addService(ADS_DEFINITION, {
      StreamAggregatedResources: (call: Call) => this.accept('sotw', call),
      DeltaAggregatedResources: (call: Call) => this.accept('delta', call),
    });
  }

  /** Binds `host:port` (plaintext); returns the bound port. */
  listen(address: string, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port)));
    });
  }

  /** Publishes new snapshots and wakes only the streams of proxies whose snapshot changed. */
  publish(next: Map<string, Snapshot>): string[] {
    const changed = new Set(this.snapshots.replace(next));
    const relabelled = new Map<string, string[]>();
    for (const l of this.live) {
      const id = l.stream.proxyId;
      if (!id || l.closed) continue;
      if (!next.has(id) && !this.opts.awaited?.(id)) {
        // Its workload is gone from the configuration: no more config or certificates for it.
        this.counters.removed++;
        this.nacked.delete(id);
        this.log.info('proxy stream closed: its workload is no longer in the configuration', { proxy: id });
        this.end(l, grpc.status.NOT_FOUND, 'this workload is no longer in the configuration');
        continue;
      }
      if (!next.has(id)) continue;
      if (changed.has(id)) {
        l.stream.onSnapshot();
        this.updateSync(l.stream);
        continue;
      }
      // Same configuration under a new revision: in sync with it at once, recorded once for all such proxies.
      const from = l.stream.inSync() ? this.registry.sync(id, l.stream, next.get(id)?.revision, true) : undefined;
      if (from === undefined) continue;
      if (!relabelled.has(from)) relabelled.set(from, []);
      relabelled.get(from)!.push(id);
    }
    for (const [from, ids] of relabelled) this.registry.onRelabel?.(ids, from);
    return [...changed];
  }

  /** Closes the live stream of a proxy (if any) with a status; it may reconnect, and admission decides again. */
  disconnect(proxyId: string, code: grpc.status, message: string): void {
    const l = this.byNode.get(proxyId);
    if (!l || l.closed) return;
    this.log.info('proxy stream closed', { proxy: proxyId, message });
    this.end(l, code, message);
  }

  /** What the proxy's current stream holds (ACKed) of a type, by name; undefined when it is not connected. */
  heldVersions(proxyId: string, typeUrl: TypeUrl): ReadonlyMap<string, string> | undefined {
    const l = this.byNode.get(proxyId);
    if (!l || l.closed) return undefined;
    return new Map([...l.stream.held(typeUrl)].map(([n, h]) => [n, h.version]));
  }

  /** Graceful stop: refuse new streams, let in-flight writes finish, end streams (proxies keep their config). */
  async close(graceMs = 5_000): Promise<void> {
    this.draining = true;
    this.refusals.flush();
    const deadline = Date.now() + graceMs;
    while ([...this.live].some((l) => l.io.writing > 0) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    for (const l of this.live) {
      l.stream.close();
      l.call.end();
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(
        () => {
          this.server.forceShutdown();
          resolve();
        },
        Math.max(0, deadline - Date.now()) + 100,
      );
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Ends a live stream with a status (the client reconnects; what it is refused then is up to admission). */
  private end(l: Live, code: grpc.status, message: string): void {
    l.closed = true;
    l.stream.close();
    l.call.emit('error', statusError(code, message));
  }

  private accept(variant: Variant, call: Call): void {
    const peer = call.getPeer();
    if (this.draining) {
      call.emit(
        'error',
        statusError(grpc.status.UNAVAILABLE, 'control plane is shutting down; reconnect to another replica'),
      );
      return;
    }
    const io = { writing: 0 };
    const stream = new AdsStream(variant, {
      snapshot: (id) => this.snapshots.get(id),
      send: (bytes) => {
        io.writing++;
        call.write(bytes, () => {
          io.writing--;
        });
      },
      event: (e) => this.onEvent(stream, e),
    });
    const live: Live = { call, io, closed: false, stream };
    this.live.add(live);

    const fail = (code: grpc.status, message: string, kind = grpc.status[code]): void => {
      this.refusals.refused(kind, { peer, variant, proxy: stream.proxyId, code: grpc.status[code], message });
      this.end(live, code, message);
    };

    // Credentials first, then the new-stream budget: a client without a valid token never uses up that budget.
    // Requests are processed in order, once the stream was admitted.
    const admitted = this.opts
      .authenticate(call.metadata)
      .then((v) => {
        if (live.closed) return undefined;
        if (!v.ok) {
          this.counters.unauthenticated++;
          if (this.admission.chargeUnauthenticated()) fail(v.code, v.message, `authentication failed (${v.reason})`);
          else fail(grpc.status.RESOURCE_EXHAUSTED, 'too many refused xDS streams', 'authentication failed (flood)');
          return undefined;
        }
        if (!this.admission.admitAuthenticated()) {
          this.counters.streamsRejected++;
          fail(grpc.status.RESOURCE_EXHAUSTED, 'too many new xDS streams; retry with backoff', 'too many new streams');
          return undefined;
        }
        return v;
      })
      .catch((err: Error) => {
        this.log.error('ads stream authentication failed', { peer, error: err.stack });
        fail(grpc.status.INTERNAL, 'internal error');
        return undefined;
      });
    let chain: Promise<void> = admitted.then(() => undefined);
    call.on('data', (req: SotwRequest | DeltaRequest | Malformed) => {
      chain = chain.then(async () => {
        const v = await admitted;
        if (v && !live.closed) onRequest(req, v);
      });
    });
    const onRequest = (req: SotwRequest | DeltaRequest | Malformed, auth: Authenticated): void => {
      const allowedNode = auth.registers ? undefined : auth.nodeId;
      if (isMalformed(req)) {
        this.counters.malformed++;
        fail(grpc.status.INVALID_ARGUMENT, `malformed discovery request: ${req.malformed}`);
        return;
      }
      const firstNode = !stream.node;
      try {
        if (firstNode) {
          const id = req.node?.id;
          if (!req.node || !id)
            throw new StreamError('INVALID_ARGUMENT', 'the first request of a stream must carry node.id');
          if (allowedNode !== undefined && id !== allowedNode) {
            this.refusals.refused('node id does not match its token', { peer, variant, node: id, token: allowedNode });
            this.end(live, grpc.status.PERMISSION_DENIED, 'permission denied');
            return;
          }
          const registers = auth.registers ? { registers: auth.registers } : {};
          const verdict = this.opts.admit(id, { node: req.node, peer, ...registers });
          if (!verdict.ok) {
            fail(verdict.code, verdict.message);
            return;
          }
          // Registered first, so that closing an older stream of this node does not show it disconnected.
          this.registry.connected(req.node, variant, peer, Date.now(), stream);
          this.takeOver(id, live, peer);
          this.log.info('proxy connected', { proxy: id, variant, peer });
        }
        stream.handle(req);
        // A request may leave nothing to send (a reconnect holding every version): then it is in sync already.
        this.updateSync(stream);
      } catch (err) {
        if (err instanceof StreamError) fail(grpc.status[err.code], err.message);
        else {
          this.log.error('ads stream failed', { peer, proxy: stream.proxyId, error: (err as Error).stack });
          fail(grpc.status.INTERNAL, 'internal error');
        }
      }
    };
    const done = (): void => {
      live.closed = true;
      if (!this.live.delete(live)) return;
      stream.close();
      if (stream.node) {
        const id = stream.node.id;
        const last = this.byNode.get(id) === live;
        if (last) this.byNode.delete(id);
        this.registry.disconnected(id, stream);
        this.log.info('proxy disconnected', { proxy: id, variant, peer });
        if (last) this.opts.closed?.(id);
      }
    };
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('close', done);
    call.on('cancelled', done);
  }

  /**
   * One live stream per node id: the newest authenticated stream wins and the older one is closed. A proxy that
   * reconnects (restart, hot restart, a half-open connection the server has not noticed yet) is never locked out
   * by its own stale stream; only a holder of the same token can displace it, and that holder gets its config anyway.
   */
  private takeOver(id: string, live: Live, peer: string): void {
    const prev = this.byNode.get(id);
    this.byNode.set(id, live);
    if (!prev || prev === live || prev.closed) return;
    this.counters.replaced++;
    this.log.warn('proxy stream replaced by a newer stream of the same node id', { proxy: id, peer });
    this.end(prev, grpc.status.ABORTED, 'replaced by a newer stream of the same node');
  }

  private updateSync(stream: AdsStream): void {
    const id = stream.proxyId;
    if (id) this.registry.sync(id, stream, stream.inSync() ? this.snapshots.get(id)?.revision : undefined);
  }

  /** Observers of every stream event (metrics, history). */
  readonly observers: ((proxyId: string, e: StreamEvent) => void)[] = [];

  private onEvent(stream: AdsStream, e: StreamEvent): void {
    if (e.kind === 'stale') this.counters.staleRequests++;
    const id = stream.proxyId;
    if (!id) return;
    if (e.kind === 'nack') {
      const seen = this.nacked.get(id) ?? new Map<string, string>();
      this.nacked.set(id, seen);
      e.repeat = seen.get(e.typeUrl) === e.version;
      seen.set(e.typeUrl, e.version);
    }
    this.registry.record(id, stream, e);
    for (const o of this.observers) o(id, e);
    // After the stream finished handling this event (it may send the next response right away).
    queueMicrotask(() => this.updateSync(stream));
    if (e.kind === 'nack' && !e.repeat) {
      this.log.warn('proxy rejected configuration (NACK)', {
        proxy: id,
        type: e.typeUrl,
        version: e.version,
        nonce: e.nonce,
        revision: e.revision,
        message: e.message,
        origins: (e.resources ?? []).flatMap((r) =>
          r.origins.map((o) => `${r.name} <- ${o.file}:${o.line}:${o.column}`),
        ),
      });
    }
  }
}

function statusError(code: grpc.status, details: string): Error & grpc.StatusObject {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}
