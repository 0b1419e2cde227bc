/**
 * The registry of instances that registered themselves into WorkloadGroups (a stream opened with a group token).
 * Its list is one more input of the compile (model/groups.ts turns each into a WorkloadEntry of its group), so a
 * registered workload goes through the same compiler as a committed one. It decides who may register (a name
 * inside the group, a name no committed WorkloadEntry has, at most the group's maxInstances) and when an instance
 * leaves: `graceMs` after its stream went away without a new one. It knows no gRPC and no compiler: callers tell it
 * what happened and it calls `onChange` when the list changed. Kept in <state-dir>/registrations.json, so a restart
 * of the control plane keeps the endpoints of instances that reconnect within the grace period. With replicas
 * (`--store`), `sharing` holds this replica's instances in the store, and the other replicas' instances come in
 * through applyRemote/dropRemote: the list is the union, and the rules (maxInstances, names) apply to the union.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { groupOfInstance, type Group, type RegisteredInstance } from '../model/groups.js';
import { writeFileAtomic } from '../util/files.js';

/** Node metadata key in which `chancery bootstrap --group --address` puts the instance's address. */
export const ADDRESS_METADATA = 'chancery.dev/address';

export interface Instance extends RegisteredInstance {
  /** The token generation it registered with; a revocation removes it. */
  generation: number;
  registeredAt: string;
  connected: boolean;
  disconnectedAt?: string;
  /** The replica whose stream it is on, when that is another replica (its grace and removal are that one's). */
  replica?: string;
}

/** Holds this replica's instances where the other replicas see them (store/shared-registrations.ts). */
export interface RegistrationSharing {
  /** A local instance was added, moved or taken over from another replica. */
  claim(i: Instance): void;
  /** A local instance left (grace over, evicted, refused). */
  release(id: string): void;
}

export type Verdict =
  { ok: true; added: boolean } | { ok: false; code: 'PERMISSION_DENIED' | 'RESOURCE_EXHAUSTED'; reason: string };

export interface RegistrationRequest {
  id: string;
  group: string;
  generation: number;
  address: string;
}

export interface Timers {
  now(): number;
  after(ms: number, fn: () => void): { cancel(): void };
}

const realTimers: Timers = {
  now: () => Date.now(),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

export class Registrations {
  private readonly instances = new Map<string, Instance>();
  private readonly timers = new Map<string, { cancel(): void }>();
  private listed?: RegisteredInstance[];
  sharing?: RegistrationSharing;
  /** Called (synchronously) whenever the list of instances changed. */
  onChange: (why: { added: string[]; removed: string[] }) => void = () => undefined;

  constructor(
    readonly graceMs: number,
    private readonly file?: string,
    private readonly clock: Timers = realTimers,
  ) {}

  /**
   * Loads the instances a previous run kept, as disconnected since now: each has the grace period to reconnect.
   * A missing or unreadable file is an empty registry (instances register again when they reconnect).
   */
  static open(stateDir: string, graceMs: number, clock?: Timers): Registrations {
    const r = new Registrations(graceMs, registrationsFile(stateDir), clock);
    for (const i of readRegistrations(stateDir)) {
      r.instances.set(i.id, { ...i, connected: false, disconnectedAt: new Date(r.clock.now()).toISOString() });
      r.startGrace(i.id);
    }
    return r;
  }

  /**
   * An instance's stream asks to be `req.id` in `req.group`. `groups` are those of the current revision;
   * `committed(id)` says whether a committed WorkloadEntry has that id.
   */
  register(req: RegistrationRequest, groups: readonly Group[], committed: (id: string) => boolean): Verdict {
    const g = groupOfInstance(groups, req.id);
    if (!g) return refuse('PERMISSION_DENIED', `${req.id} is not a name inside a WorkloadGroup`);
    if (g.id !== req.group) return refuse('PERMISSION_DENIED', `${req.id} is a name of ${g.id}, not of ${req.group}`);
    if (committed(req.id)) return refuse('PERMISSION_DENIED', `${req.id} is a committed WorkloadEntry`);
    const known = this.instances.get(req.id);
    if (known) {
      // The same instance again (a reconnect, a newer stream of it, or it moved here from another replica).
      this.stopGrace(req.id);
      const moved = known.address !== req.address;
      const takenOver = known.replica !== undefined;
      Object.assign(known, { connected: true, address: req.address, generation: req.generation });
      delete known.disconnectedAt;
      delete known.replica;
      if (moved || takenOver) this.sharing?.claim({ ...known });
      if (moved) this.changed([req.id], []);
      return { ok: true, added: false };
    }
    const members = this.countOf(g.id);
    if (members >= g.maxInstances) {
      return refuse('RESOURCE_EXHAUSTED', `${g.id} already has ${members} instances (maxInstances ${g.maxInstances})`);
    }
    const at = new Date(this.clock.now()).toISOString();
    const added: Instance = { ...req, registeredAt: at, connected: true };
    this.instances.set(req.id, added);
    this.sharing?.claim({ ...added });
    this.changed([req.id], []);
    return { ok: true, added: true };
  }

  /** Another replica holds `i` (it registered there, or its Envoy reconnected there): it is that replica's now. */
  applyRemote(i: Omit<Instance, 'connected' | 'disconnectedAt'> & { replica: string }): void {
    const known = this.instances.get(i.id);
    const same = known && known.address === i.address && known.group === i.group;
    this.stopGrace(i.id);
    this.instances.set(i.id, { ...i, connected: true });
    if (!same) this.changed([i.id], []);
  }

  /** Another replica's instance left (or that replica died and its lease expired). */
  dropRemote(id: string): void {
    const known = this.instances.get(id);
    if (!known || known.replica === undefined) return;
    this.instances.delete(id);
    this.changed([], [id]);
  }

  /** The instance's stream is gone (and no newer one of it is open): it leaves after the grace period. */
  disconnected(id: string): void {
    const i = this.instances.get(id);
    if (!i || !i.connected || i.replica !== undefined) return;
    i.connected = false;
    i.disconnectedAt = new Date(this.clock.now()).toISOString();
    this.startGrace(id);
  }

  /** Removes instances at once (their registration was refused by the compile, or they were evicted). */
  remove(ids: readonly string[]): string[] {
    const gone = ids.filter((id) => this.instances.has(id));
    for (const id of gone) {
      this.stopGrace(id);
      if (this.instances.get(id)!.replica === undefined) this.sharing?.release(id);
      this.instances.delete(id);
    }
    if (gone.length > 0) this.changed([], gone);
    return gone;
  }

  /**
   * After a revision was accepted: instances whose group is gone, whose name now belongs to another group or to a
   * committed WorkloadEntry, whose token generation was revoked, or beyond a lowered maxInstances (the newest
   * first) leave at once. Returns them.
   */
  reconcile(
    groups: readonly Group[],
    committed: (id: string) => boolean,
    generationOf: (group: string) => number,
  ): string[] {
    const evict: string[] = [];
    const kept = new Map<string, Instance[]>();
    for (const i of this.instances.values()) {
      const g = groupOfInstance(groups, i.id);
      if (!g || g.id !== i.group || committed(i.id) || generationOf(i.group) !== i.generation) evict.push(i.id);
      else kept.set(g.id, [...(kept.get(g.id) ?? []), i]);
    }
    for (const [id, list] of kept) {
      const max = groups.find((g) => g.id === id)!.maxInstances;
      if (list.length <= max) continue;
      const newestFirst = [...list].sort((a, b) => cmp(b.registeredAt + b.id, a.registeredAt + a.id));
      evict.push(...newestFirst.slice(0, list.length - max).map((i) => i.id));
    }
    return this.remove(evict.sort());
  }

  /** What the compile gets: every instance, sorted by id (the same array until something changes). */
  list(): readonly RegisteredInstance[] {
    this.listed ??= [...this.instances.values()]
      .map(({ id, group, address }) => ({ id, group, address }))
      .sort((a, b) => cmp(a.id, b.id));
    return this.listed;
  }

  get(id: string): Instance | undefined {
    return this.instances.get(id);
  }

  all(): Instance[] {
    return [...this.instances.values()].sort((a, b) => cmp(a.id, b.id)).map((i) => ({ ...i }));
  }

  countOf(group: string): number {
    let n = 0;
    for (const i of this.instances.values()) if (i.group === group) n++;
    return n;
  }

  /** Writes the registry to its state file (atomically). */
  save(): void {
    if (!this.file) return;
    const instances = this.all().map(({ connected: _c, disconnectedAt: _d, ...kept }) => kept);
    writeFileAtomic(this.file, JSON.stringify({ instances }, null, 1) + '\n');
  }

  stop(): void {
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
  }

  private startGrace(id: string): void {
    this.stopGrace(id);
    this.timers.set(
      id,
      this.clock.after(this.graceMs, () => {
        this.timers.delete(id);
        if (this.instances.get(id)?.connected === false) this.remove([id]);
      }),
    );
  }

  private stopGrace(id: string): void {
    this.timers.get(id)?.cancel();
    this.timers.delete(id);
  }

  private changed(added: string[], removed: string[]): void {
    this.listed = undefined;
    this.onChange({ added, removed });
  }
}

function refuse(code: 'PERMISSION_DENIED' | 'RESOURCE_EXHAUSTED', reason: string): Verdict {
  return { ok: false, code, reason };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

type Kept = RegisteredInstance & { generation: number; registeredAt: string };

export function registrationsFile(stateDir: string): string {
  return path.join(stateDir, 'registrations.json');
}

/**
 * The instances kept in a state directory, for the server's start and for offline commands (render, graph,
 * explain). A damaged file counts as empty: it only saves endpoints over a restart, and instances register again.
 */
export function readRegistrations(stateDir: string): Kept[] {
  const file = registrationsFile(stateDir);
  if (!existsSync(file)) return [];
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as { instances?: unknown[] };
    return (data.instances ?? []).filter(isKept);
  } catch {
    return [];
  }
}

function isKept(x: unknown): x is Kept {
  const i = x as Record<string, unknown>;
  return (
    typeof i?.id === 'string' &&
    typeof i.group === 'string' &&
    typeof i.address === 'string' &&
    isIP(i.address) !== 0 &&
    Number.isInteger(i.generation) &&
    typeof i.registeredAt === 'string'
  );
}

/**
 * The address an instance registers with: the one its bootstrap put in the node metadata, else the address its
 * connection comes from (gRPC's peer, `ipv4:1.2.3.4:5`, `1.2.3.4:5` or `[::1]:5`). Undefined when neither is an IP.
 */
export function instanceAddress(metadata: Record<string, unknown> | undefined, peer: string): string | undefined {
  const claimed = metadata?.[ADDRESS_METADATA];
  if (typeof claimed === 'string') return isIP(claimed) !== 0 ? claimed : undefined;
  const bare = peer.replace(/^ipv[46]:/, '');
  const host = bare.startsWith('[') ? bare.slice(1, bare.indexOf(']')) : bare.slice(0, bare.lastIndexOf(':'));
  const unmapped = host.startsWith('::ffff:') && isIP(host.slice(7)) === 4 ? host.slice(7) : host;
  return isIP(unmapped) !== 0 ? unmapped : undefined;
}
