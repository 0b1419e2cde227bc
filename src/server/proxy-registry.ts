/**
 * Stage: server. What each proxy was sent, ACKed and rejected, per resource type: the data behind the status API
 * (and later metrics and history). Fed by stream events; keeps the last state of disconnected proxies too.
 */
import type { Origin } from '../diag/diagnostic.js';
import { SHORT_NAME, type TypeUrl } from '../xds/type-urls.js';
import type { StreamEvent, Variant } from './ads-stream.js';
import type { NodeInfo } from './wire.js';

export interface Rejection {
  version: string;
  nonce: string;
  revision?: string;
  at: string;
  message: string;
  /** Resources in the rejected response, with the policy lines they came from. */
  resources: { name: string; origins: Origin[] }[];
}

export interface TypeStatus {
  sent?: { version: string; nonce: string; revision?: string; at: string; resources: number; removed: number; bytes: number };
  acked?: { version: string; nonce: string; revision?: string; at: string };
  lastNack?: Rejection;
  /** True while a response of this type waits for its ACK/NACK. */
  pending: boolean;
}

export interface ProxyStatus {
  id: string;
  connected: boolean;
  variant: Variant;
  peer: string;
  connectedAt: string;
  disconnectedAt?: string;
  userAgent: string;
  types: Record<string, TypeStatus>;
  stale: number;
  /** The revision whose configuration the proxy holds completely (everything sent was ACKed); undefined while behind. */
  revision?: string;
  /** The last revision the proxy held completely, and since when. */
  lastSynced?: { revision: string; at: string };
}

export class ProxyRegistry {
  private readonly proxies = new Map<string, { status: ProxyStatus; stream: unknown }>();

  onConnect?: (id: string) => void;
  /** Proxies whose unchanged configuration now belongs to a newer revision (they held `from`). */
  onRelabel?: (ids: string[], from: string) => void;

  connected(node: NodeInfo, variant: Variant, peer: string, at: number, stream: unknown): void {
    this.proxies.set(node.id, {
      stream,
      status: {
        id: node.id,
        connected: true,
        variant,
        peer,
        connectedAt: new Date(at).toISOString(),
        userAgent: node.user_agent_name || 'unknown',
        types: {},
        stale: 0,
      },
    });
    this.onConnect?.(node.id);
  }

  disconnected(id: string, stream: unknown): void {
    const p = this.proxies.get(id);
    if (!p || p.stream !== stream) return; // a newer stream of the same proxy took over
    p.status.connected = false;
    p.status.revision = undefined;
    p.status.disconnectedAt = new Date().toISOString();
    this.onSync?.(p.status);
  }

  record(id: string, stream: unknown, e: StreamEvent): void {
    const p = this.proxies.get(id);
    if (!p || p.stream !== stream) return;
    const key = SHORT_NAME[e.typeUrl as TypeUrl] ?? e.typeUrl;
    const t = (p.status.types[key] ??= { pending: false });
    const at = new Date().toISOString();
    switch (e.kind) {
      case 'sent':
        t.sent = { version: e.version, nonce: e.nonce, revision: e.revision, at, resources: e.resources?.length ?? 0, removed: e.removed?.length ?? 0, bytes: e.bytes ?? 0 };
        t.pending = true;
        break;
      case 'ack':
        t.acked = { version: e.version, nonce: e.nonce, revision: e.revision, at };
        t.pending = false;
        break;
      case 'nack':
        t.pending = false;
        t.lastNack = {
          version: e.version,
          nonce: e.nonce,
          revision: e.revision,
          at,
          message: e.message ?? '',
          resources: (e.resources ?? []).map((r) => ({ name: r.name, origins: r.origins })),
        };
        break;
      case 'stale':
        p.status.stale++;
        break;
    }
  }

  /** Called after any change of a proxy's sync state (for convergence tracking). */
  onSync?: (status: ProxyStatus) => void;

  /** Records whether the proxy's stream holds all of `revision` (undefined: it does not, yet). */
  /**
   * Records the revision a proxy holds completely. `relabel`: its configuration did not change, only the revision
   * it belongs to; returns the revision it held before, for the caller to record all such proxies at once.
   */
  sync(id: string, stream: unknown, revision: string | undefined, relabel = false): string | undefined {
    const p = this.proxies.get(id);
    if (!p || p.stream !== stream) return undefined;
    const before = p.status.revision;
    if (before === revision) return undefined;
    p.status.revision = revision;
    if (revision !== undefined) p.status.lastSynced = { revision, at: new Date().toISOString() };
    if (relabel && before !== undefined && revision !== undefined) return before;
    this.onSync?.(p.status);
    return undefined;
  }

  /** Drops a disconnected proxy's record (a registered instance that left: instances come and go for good). */
  forget(id: string): void {
    if (this.proxies.get(id)?.status.connected === false) this.proxies.delete(id);
  }

  get(id: string): ProxyStatus | undefined {
    return this.proxies.get(id)?.status;
  }

  /** Connected proxies, unsorted (cheap). */
  connectedStatuses(): ProxyStatus[] {
    const out: ProxyStatus[] = [];
    for (const p of this.proxies.values()) if (p.status.connected) out.push(p.status);
    return out;
  }

  all(): ProxyStatus[] {
    return [...this.proxies.values()].map((p) => p.status).sort((a, b) => (a.id < b.id ? -1 : 1));
  }
}
