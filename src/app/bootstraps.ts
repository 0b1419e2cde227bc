/**
 * Wiring: ready-to-run Envoy bootstraps for the workloads of an accepted revision, built from that revision's
 * compiled model (never by compiling again) and written to a directory, owner-only. `chancery bootstrap` builds the
 * same document for one workload (workloadBootstrap). A workload whose bootstrap would not change keeps its file
 * (and its token) until the token is half-way through its lifetime; files of workloads that are gone are removed.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import type { CompileResult } from '../compiler.js';
import { controlPlaneIdentity, type Workload } from '../model/mesh-model.js';
import { isLoopback } from '../model/sidecars.js';
import type { MeshSpec } from '../policy/types.js';
import { writeFileAtomic } from '../util/files.js';
import { buildBootstrap } from '../xds/bootstrap.js';
import type { Logger } from './logger.js';

export interface WorkloadBootstrapOptions {
  xds: { host: string; port: number };
  /** The workload's xDS token. */
  token: string;
  /** What verifies the xDS server's certificate (the xDS CA, ca/xds-ca.ts); omitted: plaintext xDS. */
  trustPem?: string;
  variant?: 'delta' | 'sotw';
  initialFetchTimeout?: string;
  /** Envoy's admin listener; default defaultAdminAddress(). */
  admin?: { host: string; port: number };
  /** Port for /stats/prometheus on the workload's address; 0: none. Default 15090. */
  prometheusPort?: number;
}

/** Envoy admin default: the workload's own address if loopback (many sidecars on one machine), else 127.0.0.1. */
export function defaultAdminAddress(workloadAddress: string): { host: string; port: number } {
  return { host: isLoopback(workloadAddress) ? workloadAddress : '127.0.0.1', port: 15000 };
}

/** The Envoy bootstrap of one workload's sidecar. */
export function workloadBootstrap(w: Workload, mesh: MeshSpec, o: WorkloadBootstrapOptions): object {
  const admin = o.admin ?? defaultAdminAddress(w.address);
  const promPort = o.prometheusPort ?? 15090;
  return buildBootstrap({
    nodeId: w.id,
    cluster: w.namespace,
    metadata: { 'chancery.dev/workload': w.id, 'chancery.dev/identity': w.identity },
    xds: o.xds,
    admin: { address: admin.host, port: admin.port },
    variant: o.variant ?? 'delta',
    initialFetchTimeout: o.initialFetchTimeout ?? '10s',
    token: o.token,
    ...(promPort > 0 ? { prometheus: { address: w.address, port: promPort } } : {}),
    ...(o.trustPem !== undefined ? { tls: { trustBundlePem: o.trustPem, serverIdentity: serverIdentity(mesh) } } : {}),
  });
}

const serverIdentity = (mesh: MeshSpec) => controlPlaneIdentity(mesh.trustDomain, mesh.rootNamespace);

/** The file name of a workload's bootstrap in the directory: `<namespace>.<name>.yaml`. */
export function bootstrapFileName(workloadId: string): string {
  return `${workloadId.replace('/', '.')}.yaml`;
}

export interface BootstrapWriterOptions {
  dir: string;
  xds: { host: string; port: number };
  tokenTtlSeconds: number;
  issueToken(nodeId: string, ttlSeconds: number): Promise<string>;
  /** What bootstraps trust now (it changes during an xDS CA rotation). */
  trustPem(): string;
  log: Logger;
  now?: () => number;
}

export interface BootstrapsWritten {
  revision: string;
  written: number;
  kept: number;
  removed: number;
}

/** Writes the bootstraps of each accepted revision it is given; one write at a time, the newest revision wins. */
export class BootstrapWriter {
  /** Per workload: what its file was built from, and when its token was issued. */
  private readonly files = new Map<string, { key: string; issuedAt: number }>();
  private running: Promise<void> = Promise.resolve();
  private pending?: CompileResult;

  constructor(private readonly o: BootstrapWriterOptions) {}

  /** Queues the bootstraps of `result` (an accepted revision); resolves once they or a newer revision's are written. */
  write(result: CompileResult): Promise<void> {
    const first = this.pending === undefined;
    this.pending = result;
    if (first) {
      this.running = this.running.then(async () => {
        const next = this.pending!;
        this.pending = undefined;
        await this.writeNow(next).catch((err) =>
          this.o.log.error('cannot write envoy bootstraps', { dir: this.o.dir, error: (err as Error).message }),
        );
      });
    }
    return this.running;
  }

  private async writeNow(result: CompileResult): Promise<void> {
    const model = result.model;
    if (!result.ok || !model) return;
    mkdirSync(this.o.dir, { recursive: true, mode: 0o700 });
    const now = this.o.now ?? Date.now;
    const bundle = this.o.trustPem();
    const xds = this.o.xds;
    const out: BootstrapsWritten = { revision: result.revision, written: 0, kept: 0, removed: 0 };
    const wanted = new Set<string>();
    // Committed workloads only: a registered instance runs on the group bootstrap it registered with.
    const workloads = model.workloads.filter((w) => !w.registered);
    for (const w of workloads) {
      const file = bootstrapFileName(w.id);
      wanted.add(file);
      const { trustDomain, rootNamespace } = model.mesh;
      const key = JSON.stringify([w.id, w.namespace, w.identity, w.address, trustDomain, rootNamespace, bundle, xds]);
      const had = this.files.get(file);
      if (had?.key === key && now() - had.issuedAt < (this.o.tokenTtlSeconds * 1000) / 2) {
        out.kept++;
        continue;
      }
      const token = await this.o.issueToken(w.id, this.o.tokenTtlSeconds);
      const doc = workloadBootstrap(w, model.mesh, { xds: this.o.xds, token, trustPem: bundle });
      // Atomic: an Envoy starting meanwhile reads the old file or the new one, never half of one.
      writeFileAtomic(path.join(this.o.dir, file), stringify(doc, { aliasDuplicateObjects: false }));
      this.files.set(file, { key, issuedAt: now() });
      out.written++;
    }
    for (const name of readdirSync(this.o.dir)) {
      if (!name.endsWith('.yaml') || wanted.has(name)) continue;
      rmSync(path.join(this.o.dir, name), { force: true });
      this.files.delete(name);
      out.removed++;
    }
    this.o.log.info('envoy bootstraps written', { dir: this.o.dir, workloads: workloads.length, ...out });
  }
}
