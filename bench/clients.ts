/**
 * Simulated Envoys: Delta (or SotW) ADS streams that subscribe and ACK like Envoy (wildcard CDS and LDS, then EDS,
 * RDS and SDS by name) and record what they receive: responses, bytes, and when each type was ACKed. Only the
 * response envelope is decoded; names of what to subscribe next follow the synthetic mesh's naming.
 */
import * as grpc from '@grpc/grpc-js';
import { lookupType } from '../src/xds/proto/strict.js';
import { TYPE } from '../src/xds/type-urls.js';

const T = { CDS: TYPE.cluster, EDS: TYPE.endpoint, LDS: TYPE.listener, RDS: TYPE.route, SDS: TYPE.secret };

export interface ClientStats {
  id: string;
  responses: number;
  bytes: number;
  lastResponseAt: number;
  firstFullAt?: number;
  types: Set<string>;
}

const id = (b: Buffer) => b;

export class SimulatedEnvoys {
  readonly stats = new Map<string, ClientStats>();
  /** When the first response after the last `snapshot()` arrived (any client). */
  firstResponseAt?: number;
  private readonly channels: grpc.Client[] = [];
  private readonly calls: grpc.ClientDuplexStream<Buffer, Buffer>[] = [];

  constructor(
    private readonly port: number,
    private readonly variant: 'delta' | 'sotw',
    private readonly streamsPerChannel = 100,
  ) {}

  /**
   * Opens one stream per proxy id, all at once. `tokens` holds one token per id, or one for all (a group token);
   * `address` gives a proxy's node metadata the address it registers with.
   */
  connect(ids: string[], tokens: string[], address?: (i: number) => string): void {
    const method = this.variant === 'delta' ? 'DeltaAggregatedResources' : 'StreamAggregatedResources';
    const reqType = lookupType(this.variant === 'delta' ? 'envoy.service.discovery.v3.DeltaDiscoveryRequest' : 'envoy.service.discovery.v3.DiscoveryRequest');
    const resType = lookupType(this.variant === 'delta' ? 'envoy.service.discovery.v3.DeltaDiscoveryResponse' : 'envoy.service.discovery.v3.DiscoveryResponse');
    const Client = grpc.makeGenericClientConstructor(
      { [method]: { path: `/envoy.service.discovery.v3.AggregatedDiscoveryService/${method}`, requestStream: true, responseStream: true, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } },
      'ads',
    );
    const clusterType = lookupType('envoy.config.cluster.v3.Cluster');
    const enc = (o: object) => Buffer.from(reqType.encode(reqType.fromObject(o)).finish());
    ids.forEach((nodeId, i) => {
      if (i % this.streamsPerChannel === 0) this.channels.push(new Client(`127.0.0.1:${this.port}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 << 20 }));
      const client = this.channels[this.channels.length - 1] as unknown as Record<string, (md: grpc.Metadata) => grpc.ClientDuplexStream<Buffer, Buffer>>;
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${tokens[i] ?? tokens[0]}`);
      const call = client[method](md);
      this.calls.push(call);
      const st: ClientStats = { id: nodeId, responses: 0, bytes: 0, lastResponseAt: 0, types: new Set() };
      this.stats.set(nodeId, st);
      const metadata = address ? { metadata: { fields: { 'chancery.dev/address': { stringValue: address(i) } } } } : {};
      const node = { id: nodeId, cluster: 'bench', ...metadata };
      const sotwNames = new Map<string, string[]>();
      const subscribe = (type: string, names: string[], first = false) => {
        if (this.variant === 'delta') call.write(enc({ ...(first ? { node } : {}), type_url: type, resource_names_subscribe: names }));
        else {
          sotwNames.set(type, names);
          call.write(enc({ ...(first ? { node } : {}), type_url: type, resource_names: names }));
        }
      };
      call.on('data', (buf: Buffer) => {
        const r = resType.decode(buf) as unknown as { type_url: string; nonce: string; version_info?: string; resources: { name?: string; type_url?: string }[] };
        st.responses++;
        st.bytes += buf.length;
        st.lastResponseAt = performance.now();
        this.firstResponseAt ??= st.lastResponseAt;
        const firstOfType = !st.types.has(r.type_url);
        st.types.add(r.type_url);
        if (this.variant === 'delta') call.write(enc({ type_url: r.type_url, response_nonce: r.nonce }));
        else call.write(enc({ type_url: r.type_url, response_nonce: r.nonce, version_info: r.version_info, resource_names: sotwNames.get(r.type_url) ?? [] }));
        if (firstOfType && r.type_url === T.CDS) {
          // Delta resources carry their name; SotW ones are bare Any messages, so decode the Cluster's name.
          const names = r.resources
            .map((x) => x.name ?? (clusterType.decode((x as unknown as { value: Uint8Array }).value) as unknown as { name: string }).name)
            .filter((n) => n.startsWith('outbound|'));
          subscribe(T.EDS, names);
        }
        if (firstOfType && r.type_url === T.LDS) {
          subscribe(T.RDS, ['outbound|15001']);
          subscribe(T.SDS, ['default', 'ROOTCA']);
        }
        if (st.firstFullAt === undefined && st.types.size === 5) st.firstFullAt = performance.now();
      });
      call.on('error', () => {});
      subscribe(T.CDS, [], true);
      subscribe(T.LDS, []);
    });
  }

  /** Resolves when no response arrived for `quietMs` (or after `maxMs`). */
  async settle(quietMs = 1000, maxMs = 120_000): Promise<void> {
    const start = performance.now();
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      const last = Math.max(start, ...[...this.stats.values()].map((s) => s.lastResponseAt));
      if (performance.now() - last > quietMs || performance.now() - start > maxMs) return;
    }
  }

  snapshot(): Map<string, { responses: number; bytes: number }> {
    this.firstResponseAt = undefined;
    return new Map([...this.stats].map(([k, v]) => [k, { responses: v.responses, bytes: v.bytes }]));
  }

  /** Proxies that got a response after `since` (performance.now() time) and when the last of them did. */
  since(since: number, ids: readonly string[]): { count: number; last: number } {
    let count = 0;
    let last = since;
    for (const id of ids) {
      const s = this.stats.get(id);
      if (!s || s.lastResponseAt <= since) continue;
      count++;
      last = Math.max(last, s.lastResponseAt);
    }
    return { count, last };
  }

  close(): void {
    for (const c of this.calls) c.cancel();
    for (const ch of this.channels) ch.close();
  }
}
