/**
 * The physical limit, in its own process like the control plane: a bare grpc-js server on the ADS Delta method
 * that, when told, writes one pre-encoded DeltaDiscoveryResponse to every open stream, and otherwise only counts
 * the replies. No snapshots, no state machine, no bookkeeping: what serving costs on this machine and nothing else.
 */
import * as grpc from '@grpc/grpc-js';
import { lookupType } from '../src/xds/proto/strict.js';
import { TYPE } from '../src/xds/type-urls.js';

const id = (b: Buffer) => b;
const calls: grpc.ServerDuplexStream<Buffer, Buffer>[] = [];
const server = new grpc.Server({ 'grpc.max_receive_message_length': 4 << 20 });
server.addService(
  {
    DeltaAggregatedResources: {
      path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources',
      requestStream: true,
      responseStream: true,
      requestSerialize: id,
      requestDeserialize: id,
      responseSerialize: id,
      responseDeserialize: id,
    },
  } as unknown as grpc.ServiceDefinition,
  {
    DeltaAggregatedResources: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      calls.push(call);
      call.on('data', () => {});
      call.on('error', () => {});
    },
  },
);
const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));

/** A Delta response with one listener-typed resource whose payload makes the message about `bytes` long. */
function response(bytes: number, nonce: string): Buffer {
  const type = lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  const resource = { name: 'bench', version: nonce, resource: { type_url: TYPE.listener, value: Buffer.alloc(Math.max(0, bytes - 200), 1) } };
  return Buffer.from(type.encode(type.fromObject({ system_version_info: nonce, type_url: TYPE.listener, nonce, resources: [resource] })).finish());
}

process.on('message', (m: { cmd: string; bytes?: number; nonce?: string; streams?: number }) => {
  if (m.cmd === 'streams') process.send!({ cmd: 'streams', count: calls.length });
  else if (m.cmd === 'push') {
    const payload = response(m.bytes ?? 2000, m.nonce ?? 'n');
    for (const c of calls) c.write(payload);
    process.send!({ cmd: 'push', bytes: payload.length });
  }
});
process.send!({ cmd: 'ready', port });
