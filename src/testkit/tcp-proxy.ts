// A TCP forwarder on loopback for counterparts whose real server cannot be stopped by a test (a shared
// broker, a database): the adapter connects through it, and `down()` makes the server unreachable as a
// network failure would (listener closed, open connections cut); `up()` listens again on the same port.
import net from 'node:net';
import { listenOnLoopback } from './listen';

export class TcpProxy {
  port = 0;
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly target: { host: string; port: number }) {}

  /** Listens (on the port of the first start after a down()). */
  async up(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          this.sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.port = await listenOnLoopback(server, this.port);
    this.server = server;
  }

  /** Stops listening and cuts every connection through it. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
