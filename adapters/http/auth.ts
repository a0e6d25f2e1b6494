// Authentication for the http adapter: basic, bearer token, or OAuth2 client credentials. Every
// credential is a secret reference ({ env } or { file }), read at connect; no value is ever logged.
// OAuth2 tokens are cached until shortly before they expire; one refresh runs at a time however many
// deliveries wait for it; a 401 from the back office drops the token it was sent with (once).
import { z } from 'zod';
import { readSecret, secretRefSchema } from '../../src/config/secret';
import type { HttpClient } from './client';

export const authSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('basic'), username: z.string().min(1), password: secretRefSchema }),
  z.strictObject({ type: z.literal('bearer'), token: secretRefSchema }),
  /** An API key in a header of the back office's choosing, e.g. `X-API-Key`. */
  z.strictObject({ type: z.literal('header'), name: z.string().regex(/^[A-Za-z0-9-]+$/, 'a header name'), value: secretRefSchema }),
  z.strictObject({
    type: z.literal('oauth2'),
    /** Token endpoint (client credentials grant). Reached with the target's TLS settings. */
    tokenUrl: z.url({ protocol: /^https?$/ }),
    clientId: z.string().min(1),
    clientSecret: secretRefSchema,
    scope: z.string().min(1).optional(),
    audience: z.string().min(1).optional(),
    /** `basic`: client id and secret in an Authorization header (client_secret_basic); `body`: as form fields (client_secret_post). */
    clientAuthentication: z.enum(['basic', 'body']).default('basic'),
    /** Fetch a new token this many seconds before the current one expires. */
    refreshBeforeExpirySeconds: z.number().int().min(0).max(3600).default(60),
    /** Lifetime assumed when the token endpoint gives no `expires_in`. */
    defaultLifetimeSeconds: z.number().int().min(1).max(86_400).default(300),
  }),
]);

export type AuthConfig = z.output<typeof authSchema>;
type OAuth2Config = Extract<AuthConfig, { type: 'oauth2' }>;

/** The token endpoint refused or failed; `detail` names the status or error code, never a credential. */
export class TokenError extends Error {
  constructor(readonly detail: string) {
    super(detail);
    this.name = 'TokenError';
  }
}

const basicCredentials = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;

/** Client credentials grant with a cached token and single-flight refresh. */
export class OAuth2TokenSource {
  private cached?: { token: string; refreshAt: number };
  private pending?: Promise<string>;
  /** Token requests made (for tests and metrics). */
  requests = 0;

  constructor(
    private readonly config: OAuth2Config,
    private readonly clientSecret: string,
    /** The adapter's client: the token endpoint is reached with the target's TLS settings. */
    private readonly client: HttpClient,
    private readonly now: () => number = Date.now,
  ) {}

  async token(): Promise<string> {
    if (this.cached && this.now() < this.cached.refreshAt) return this.cached.token;
    this.pending ??= this.fetch().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  /** The back office refused `token`: forget it, unless a newer one already replaced it. */
  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = undefined;
  }

  private async fetch(): Promise<string> {
    this.requests += 1;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (this.config.scope) form.set('scope', this.config.scope);
    if (this.config.audience) form.set('audience', this.config.audience);
    const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };
    if (this.config.clientAuthentication === 'basic') {
      // RFC 6749 2.3.1: form-urlencode id and secret before Basic encoding.
      headers.Authorization = basicCredentials(encodeURIComponent(this.config.clientId), encodeURIComponent(this.clientSecret));
    } else {
      form.set('client_id', this.config.clientId);
      form.set('client_secret', this.clientSecret);
    }
    const started = this.now();
    let response;
    try {
      response = await this.client.request({ url: this.config.tokenUrl, method: 'POST', body: form.toString(), headers });
    } catch (error) {
      throw new TokenError(`token endpoint unreachable (${(error as { code?: string }).code ?? 'error'})`);
    }
    if (response.status !== 200) throw new TokenError(`token endpoint answered HTTP ${response.status}`);
    const body = response.data as { access_token?: unknown; token_type?: unknown; expires_in?: unknown } | undefined;
    const token = body?.access_token;
    if (typeof token !== 'string' || token === '') throw new TokenError('token endpoint answered without access_token');
    if (typeof body?.token_type === 'string' && body.token_type.toLowerCase() !== 'bearer') throw new TokenError(`token endpoint gave an unsupported token_type`);
    const lifetime = typeof body?.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : this.config.defaultLifetimeSeconds;
    // Refresh a margin before expiry, but never treat a short-lived token as already expired.
    const margin = Math.min(this.config.refreshBeforeExpirySeconds, lifetime / 2);
    this.cached = { token, refreshAt: started + (lifetime - margin) * 1000 };
    return token;
  }
}

/** Gives the credential header for each request; `refused` is called after a 401 and says whether a retry may help. */
export interface Authenticator {
  /** Header name carrying the credential (`Authorization` unless an API key header is configured). */
  readonly name: string;
  header(): Promise<string | undefined>;
  refused(header: string | undefined): boolean;
  /** The OAuth2 token source, if any (tests count its requests). */
  readonly oauth2?: OAuth2TokenSource;
}

/** Reads the configured credentials now (at connect; a missing secret throws SecretMissingError). */
export function createAuthenticator(config: AuthConfig | undefined, client: HttpClient): Authenticator {
  const fixed = (name: string, value: string | undefined): Authenticator => ({ name, header: async () => value, refused: () => false });
  if (!config) return fixed('Authorization', undefined);
  if (config.type === 'basic') return fixed('Authorization', basicCredentials(config.username, readSecret(config.password)));
  if (config.type === 'bearer') return fixed('Authorization', `Bearer ${readSecret(config.token)}`);
  if (config.type === 'header') return fixed(config.name, readSecret(config.value));
  const source = new OAuth2TokenSource(config, readSecret(config.clientSecret), client);
  return {
    name: 'Authorization',
    oauth2: source,
    header: async () => `Bearer ${await source.token()}`,
    refused: (header) => {
      if (header) source.invalidate(header.slice('Bearer '.length));
      return true;
    },
  };
}
