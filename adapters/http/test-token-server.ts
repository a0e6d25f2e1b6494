// A small OAuth2 token endpoint (client credentials grant) for tests, with express: it checks the client's
// credentials (Basic header or form fields), issues numbered tokens, counts requests, and can revoke tokens.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';

export class TokenServer {
  requests = 0;
  /** Tokens the back office should accept. */
  readonly valid = new Set<string>();
  expiresIn: number | undefined = 3600;
  /** Answer every token request with this status instead (e.g. 500). */
  failWith: number | undefined;
  lastScope: string | undefined;
  private issued = 0;
  private server?: Server;

  constructor(readonly clientId: string, readonly clientSecret: string) {}

  async start(): Promise<string> {
    const app = express();
    app.post('/token', express.urlencoded({ extended: false }), (request, response) => {
      this.requests += 1;
      if (this.failWith) return void response.status(this.failWith).json({ error: 'temporarily_unavailable' });
      const body = request.body as Record<string, string | undefined>;
      let id = body.client_id;
      let secret = body.client_secret;
      const basic = /^Basic (.+)$/.exec(request.headers.authorization ?? '');
      if (basic) [id, secret] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':').map(decodeURIComponent);
      if (body.grant_type !== 'client_credentials') return void response.status(400).json({ error: 'unsupported_grant_type' });
      if (id !== this.clientId || secret !== this.clientSecret) return void response.status(401).json({ error: 'invalid_client' });
      this.lastScope = body.scope;
      this.issued += 1;
      const token = `token-${this.issued}-${Math.random().toString(36).slice(2)}`;
      this.valid.add(token);
      response.json({ access_token: token, token_type: 'Bearer', ...(this.expiresIn === undefined ? {} : { expires_in: this.expiresIn }) });
    });
    this.server = await new Promise<Server>((resolve) => {
      const server = app.listen(0, '127.0.0.1', () => resolve(server));
    });
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/token`;
  }

  /** True when the request carries a token this server issued and has not revoked. */
  accepts(authorization: string | undefined): boolean {
    const match = /^Bearer (.+)$/.exec(authorization ?? '');
    return !!match && this.valid.has(match[1]!);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
