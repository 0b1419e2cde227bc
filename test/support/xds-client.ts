/**
 * A minimal xDS test client over real gRPC: sends (Delta)DiscoveryRequests built from plain objects and decodes
 * every response, including the resources inside each Any, so scenarios can assert on what went over the wire.
 */
import * as grpc from '@grpc/grpc-js';
import { lookupType, decodeToJson } from '../../src/xds/proto/strict.js';
import { messageName } from '../../src/xds/type-urls.js';

export interface Decoded {
  version: string;
  typeUrl: string;
  nonce: string;
  resources: { name: string; version?: string; json: any }[];
  removed: string[];
}

const NAME_FIELD: Record<string, string> = {
  'envoy.config.endpoint.v3.ClusterLoadAssignment': 'cluster_name',
};

export class XdsTestClient {
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  private readonly queue: Decoded[] = [];
  private waiters: ((d: Decoded) => void)[] = [];
  status?: grpc.StatusObject;
  private statusWaiters: ((s: grpc.StatusObject) => void)[] = [];

  constructor(
    readonly port: number,
    readonly variant: 'sotw' | 'delta',
    token?: string,
    host = '127.0.0.1',
  ) {
    const metadata = new grpc.Metadata();
    if (token) metadata.set('authorization', `Bearer ${token}`);
    const method = variant === 'sotw' ? 'StreamAggregatedResources' : 'DeltaAggregatedResources';
    const reqType = lookupType(
      variant === 'sotw'
        ? 'envoy.service.discovery.v3.DiscoveryRequest'
        : 'envoy.service.discovery.v3.DeltaDiscoveryRequest',
    );
    const resType = lookupType(
      variant === 'sotw'
        ? 'envoy.service.discovery.v3.DiscoveryResponse'
        : 'envoy.service.discovery.v3.DeltaDiscoveryResponse',
    );
    const Client = grpc.makeGenericClientConstructor(
      {
        [method]: {
          path: `/envoy.service.discovery.v3.AggregatedDiscoveryService/${method}`,
          requestStream: true,
          responseStream: true,
          requestSerialize: (o: Buffer) => o,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (o: Buffer) => o,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      'ads',
    );
    type Open = (md: grpc.Metadata) => grpc.ClientDuplexStream<Buffer, Buffer>;
    const client = new Client(`${host}:${port}`, grpc.credentials.createInsecure()) as unknown as Record<string, Open>;
    this.encode = (o: object) => Buffer.from(reqType.encode(reqType.fromObject(o)).finish());
    this.call = client[method](metadata);
    this.call.on('data', (buf: Buffer) => {
      const msg = resType.toObject(resType.decode(buf), { longs: String, defaults: true, arrays: true }) as any;
      const d: Decoded =
        variant === 'sotw'
          ? {
              version: msg.version_info,
              typeUrl: msg.type_url,
              nonce: msg.nonce,
              resources: msg.resources.map((a: any) => decodeAny(a)),
              removed: [],
            }
          : {
              version: msg.system_version_info,
              typeUrl: msg.type_url,
              nonce: msg.nonce,
              resources: msg.resources.map((r: any) => ({
                ...decodeAny(r.resource),
                name: r.name,
                version: r.version,
              })),
              removed: msg.removed_resources,
            };
      const w = this.waiters.shift();
      if (w) w(d);
      else this.queue.push(d);
    });
    this.call.on('status', (s: grpc.StatusObject) => {
      this.status = s;
      for (const w of this.statusWaiters) w(s);
    });
    this.call.on('error', () => {});
  }

  private readonly encode: (o: object) => Buffer;

  send(req: object): void {
    this.call.write(this.encode(req));
  }

  sendRaw(bytes: Buffer): void {
    this.call.write(bytes);
  }

  /** The next response, or a rejection after `timeoutMs`. */
  next(timeoutMs = 3000): Promise<Decoded> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no xDS response within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (d: Decoded): void => {
        clearTimeout(timer);
        resolve(d);
      };
      this.waiters.push(waiter);
    });
  }

  /** Resolves true if no response arrives within `ms` (and leaves any that does in the queue). */
  async quiet(ms = 300): Promise<boolean> {
    await new Promise((r) => setTimeout(r, ms));
    return this.queue.length === 0;
  }

  /** Resolves with the stream's final status. */
  ended(timeoutMs = 3000): Promise<grpc.StatusObject> {
    if (this.status) return Promise.resolve(this.status);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('stream did not end')), timeoutMs);
      this.statusWaiters.push((s) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
  }

  close(): void {
    this.call.cancel();
  }
}

function decodeAny(a: { type_url: string; value: Uint8Array }): { name: string; json: any } {
  const type = messageName(a.type_url);
  const json = decodeToJson(type, a.value) as any;
  return { name: json[NAME_FIELD[type] ?? 'name'], json };
}

export const T = {
  CDS: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  EDS: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  LDS: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  RDS: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  SDS: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
};

/**
 * Everything a proxy is served over Delta ADS (explicit wildcard on every type, each response ACKed), as
 * `<type> <name>` -> `<version> <resource JSON>`, once the server has been quiet for `quietMs`.
 */
export async function fetchEverything(
  c: XdsTestClient,
  node: { id: string; cluster: string },
  quietMs = 200,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  Object.values(T).forEach((type_url, i) =>
    c.send({ ...(i === 0 ? { node } : {}), type_url, resource_names_subscribe: ['*'] }),
  );
  for (;;) {
    const d = await c.next(5000);
    for (const r of d.resources) out.set(`${d.typeUrl} ${r.name}`, `${r.version} ${JSON.stringify(r.json)}`);
    for (const n of d.removed) out.delete(`${d.typeUrl} ${n}`);
    c.send({ type_url: d.typeUrl, response_nonce: d.nonce });
    if (await c.quiet(quietMs)) return out;
  }
}
