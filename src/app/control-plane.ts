/**
 * Wiring only: watch -> compile -> publish -> serve. The one place where stages meet. A revision with errors is
 * rejected whole and every proxy keeps its last good snapshot.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdirSync } from 'node:fs';
import { compileSource, type CompileResult } from '../compiler.js';
import type { Diagnostic } from '../diag/diagnostic.js';
import { AdsServer, DEFAULT_ADS_OPTIONS } from '../server/ads-server.js';
import { ResourceCache } from '../snapshot/resource-cache.js';
import { buildSnapshot, type Snapshot } from '../snapshot/snapshot.js';
import { readDirectory } from '../source/directory.js';
import { watchDirectory } from '../source/watch.js';
import { ProtoShapeError } from '../xds/proto/strict.js';
import type { Logger } from './logger.js';

export interface ControlPlaneSettings {
  configDir: string;
  /** host:port for xDS (gRPC). */
  xdsAddress: string;
  stateDir: string;
  debounceQuietMs: number;
  debounceMaxMs: number;
  maxNewStreamsPerSecond: number;
  watch: boolean;
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

export class ControlPlane {
  readonly ads: AdsServer;
  private readonly cache = new ResourceCache();
  private stopWatching?: () => void;
  current?: { result: CompileResult; snapshots: Map<string, Snapshot> };
  readonly revisions: RevisionRecord[] = [];
  xdsPort = 0;
  readonly startedAt = new Date().toISOString();

  constructor(
    readonly settings: ControlPlaneSettings,
    private readonly log: Logger,
  ) {
    this.ads = new AdsServer(
      {
        ...DEFAULT_ADS_OPTIONS,
        maxNewStreamsPerSecond: settings.maxNewStreamsPerSecond,
        admit: (id) => this.admit(id),
      },
      log,
    );
  }

  async start(): Promise<void> {
    mkdirSync(this.settings.stateDir, { recursive: true, mode: 0o700 });
    this.reload();
    this.xdsPort = await this.ads.listen(this.settings.xdsAddress);
    this.log.info('xds listening', { address: this.settings.xdsAddress, port: this.xdsPort });
    if (this.settings.watch) {
      this.stopWatching = watchDirectory(this.settings.configDir, () => this.reload(), this.settings.debounceQuietMs, this.settings.debounceMaxMs);
    }
  }

  async stop(): Promise<void> {
    this.stopWatching?.();
    await this.ads.close();
  }

  /** Reads, compiles and (if clean) publishes the policy directory. Returns the revision's record. */
  reload(): RevisionRecord {
    const t0 = performance.now();
    const src = readDirectory(this.settings.configDir);
    const last = this.revisions[this.revisions.length - 1];
    if (last && last.revision === src.value.revision && src.diagnostics.length === 0) return last; // nothing changed
    const result = compileSource(src.value, src.diagnostics);
    let snapshots: Map<string, Snapshot> | undefined;
    const diagnostics = [...result.diagnostics];
    if (result.ok) {
      try {
        snapshots = this.buildSnapshots(result);
      } catch (err) {
        if (!(err instanceof ProtoShapeError)) throw err;
        // The compiler produced something Envoy's schema rejects: a bug, but never a reason to push it.
        diagnostics.push({ code: 'CH0204', severity: 'error', message: `internal: generated configuration is invalid: ${err.message}` });
      }
    }
    const compileMs = Math.round((performance.now() - t0) * 10) / 10;
    const record: RevisionRecord = {
      revision: result.revision,
      status: snapshots ? 'accepted' : 'rejected',
      at: new Date().toISOString(),
      compileMs,
      diagnostics,
      proxies: snapshots?.size ?? 0,
    };
    this.revisions.push(record);
    if (this.revisions.length > HISTORY_LIMIT) this.revisions.shift();
    if (!snapshots) {
      this.log.warn('revision rejected; proxies keep the last good configuration', {
        revision: result.revision,
        kept: this.current?.result.revision,
        errors: diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.location ? `${d.location.file}:${d.location.line}:${d.location.column}` : '<mesh>'} ${d.code} ${d.message}`),
      });
      return record;
    }
    this.current = { result, snapshots };
    const changed = this.ads.publish(snapshots);
    this.log.info('revision accepted', { revision: result.revision, proxies: snapshots.size, changed: changed.length, compileMs, encodes: this.cache.encodes });
    return record;
  }

  private buildSnapshots(result: CompileResult): Map<string, Snapshot> {
    this.cache.beginGeneration();
    const out = new Map<string, Snapshot>();
    for (const [id, p] of result.proxies) out.set(id, buildSnapshot(id, result.revision, p.resources, this.cache));
    this.cache.sweep();
    return out;
  }

  private admit(id: string): { ok: true } | { ok: false; code: grpc.status; message: string } {
    if (!this.current) return { ok: true }; // nothing accepted yet: hold the stream until a revision is
    if (this.current.snapshots.has(id)) return { ok: true };
    return { ok: false, code: grpc.status.NOT_FOUND, message: `no workload "${id}" in revision ${this.current.result.revision}` };
  }
}
