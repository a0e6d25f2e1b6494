// Counterparts that go down and come back listen again on the port they had, so the adapter's
// configuration stays valid.
import type { AddressInfo, Server } from 'node:net';

/** Listens on 127.0.0.1:`port` (0: any free port); resolves with the port, rejects on a listen error. */
export async function listenOnLoopback(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}
