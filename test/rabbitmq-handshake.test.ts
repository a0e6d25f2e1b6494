// A broker that accepts the TCP connection but never answers the AMQP protocol header (a wedged node):
// opening the transport must fail after the handshake timeout instead of hanging start-up for ever.
import net from 'node:net';
import pino from 'pino';
import { RabbitTransport } from '../src/transport/rabbitmq-transport';

test('a silent broker fails the start after the handshake timeout', async () => {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => sockets.push(socket)); // accepts, reads nothing, says nothing
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const started = Date.now();
  try {
    await expect(RabbitTransport.open({ url: `amqp://guest:guest@127.0.0.1:${port}`, prefix: 'silent', heartbeatSeconds: 5, log: pino({ level: 'silent' }), initialConnectRetries: 0 })).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(25_000);
    expect(sockets.length).toBeGreaterThanOrEqual(1);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}, 40_000);
