/**
 * The physical limit: a bare grpc-js server that writes one pre-encoded response of the given size to every
 * connected stream and waits for each client's reply (its ACK); nothing else. Chancery's push figures are reported
 * as a ratio to this, so results compare across noisy runs.
 */
import * as grpc from '@grpc/grpc-js';

const id = (b: Buffer) => b;
const METHOD = {
  path: '/bench.Limit/Stream',
  requestStream: true,
  responseStream: true,
  requestSerialize: id,
  requestDeserialize: id,
  responseSerialize: id,
  responseDeserialize: id,
};

export async function physicalLimit(clients: number, bytes: number): Promise<{ ms: number; perSecond: number }> {
  const server = new grpc.Server();
  const calls: grpc.ServerDuplexStream<Buffer, Buffer>[] = [];
  let acked = 0;
  let done: () => void = () => {};
  server.addService({ Stream: METHOD } as unknown as grpc.ServiceDefinition, {
    Stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      calls.push(call);
      call.on('data', () => {
        if (++acked === clients) done();
      });
      call.on('error', () => {});
    },
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const Client = grpc.makeGenericClientConstructor({ Stream: METHOD }, 'limit');
  const channels: grpc.Client[] = [];
  const streams: grpc.ClientDuplexStream<Buffer, Buffer>[] = [];
  for (let i = 0; i < clients; i++) {
    if (i % 100 === 0) channels.push(new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()));
    const s = (channels[channels.length - 1] as unknown as Record<string, () => grpc.ClientDuplexStream<Buffer, Buffer>>).Stream();
    s.on('data', () => s.write(Buffer.from('ack')));
    s.on('error', () => {});
    s.write(Buffer.from('hello'));
    streams.push(s);
  }
  while (calls.length < clients) await new Promise((r) => setTimeout(r, 10));
  acked = 0;
  await new Promise((r) => setTimeout(r, 200));
  acked = 0;
  const payload = Buffer.alloc(bytes, 1);
  const finished = new Promise<void>((r) => (done = r));
  const t0 = performance.now();
  for (const c of calls) c.write(payload);
  await finished;
  const ms = performance.now() - t0;
  for (const s of streams) s.cancel();
  for (const c of channels) c.close();
  server.forceShutdown();
  return { ms, perSecond: clients / (ms / 1000) };
}
