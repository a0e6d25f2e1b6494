// Who is calling: API tokens (stored as SHA-256 in the configuration) and client certificates (mutual TLS,
// by SHA-256 fingerprint), mapped to configured clients with roles, tenants and services.
import { createHash, randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { NextFunction, Request, Response } from 'express';
import type { RawConfig } from '../config/schema';
import type { Facts } from '../envelope/envelope';
import { InputError } from '../errors';
import { problemFor, sendProblem } from '../intake/problem';
import { toAgs, toLeistung } from '../route/keys';
import { tenantOf } from '../store/operations';

export type Role = 'submit' | 'admin' | 'receipt';

export interface Client {
  name: string;
  roles: ReadonlySet<Role>;
  /** AGS the client may submit for; undefined: any. */
  tenants?: ReadonlySet<string>;
  /** Leistungsschlüssel the client may submit for; undefined: any. */
  services?: ReadonlySet<string>;
  /** Targets the client may report receipts for (role receipt). */
  targets?: ReadonlySet<string>;
}

/** The caller when the deployment configures no clients: may submit for anyone, is no operator. */
export const ANONYMOUS: Client = { name: 'anonymous', roles: new Set(['submit']) };

/** SHA-256 (hex) of an API token, as the configuration stores it. */
export const tokenHash = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** A new API token: 32 random bytes, base64url, with a prefix that makes it recognisable in secret scanners. */
export const newToken = (): string => `arx_${randomBytes(32).toString('base64url')}`;

declare module 'express-serve-static-core' {
  interface Request {
    client?: Client;
  }
}

export class Authenticator {
  private readonly byToken = new Map<string, Client>();
  private readonly byCertificate = new Map<string, Client>();
  /** No clients configured: the intake is open (first steps on one machine); the admin API is closed. */
  readonly open: boolean;

  constructor(auth: RawConfig['auth']) {
    this.open = auth === undefined;
    for (const [name, c] of Object.entries(auth?.clients ?? {})) {
      const tenants = c.tenants && !c.tenants.includes('*') ? new Set(c.tenants.map((t) => toAgs(t)!)) : undefined;
      const client: Client = {
        name, roles: new Set(c.roles), tenants, services: c.services ? new Set(c.services.map(toLeistung)) : undefined, targets: c.targets ? new Set(c.targets) : undefined,
      };
      for (const hash of c.tokenSha256 ?? []) this.byToken.set(hash, client);
      for (const fingerprint of c.certificateSha256 ?? []) this.byCertificate.set(fingerprint, client);
    }
  }

  /** The configured client behind a request, if its token or client certificate is known. */
  identify(req: Request): Client | undefined {
    const header = req.get('authorization');
    const bearer = header?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
    if (bearer) return this.byToken.get(tokenHash(bearer));
    const socket = req.socket as Partial<TLSSocket>;
    if (socket.encrypted && socket.authorized) {
      const fingerprint = socket.getPeerCertificate?.()?.fingerprint256;
      if (fingerprint) return this.byCertificate.get(fingerprint.replace(/:/g, '').toLowerCase());
    }
    return undefined;
  }

  /** Express middleware: sets `req.client` if it has one of `roles`, or answers 401/403 as problem+json. */
  require(...roles: Role[]) {
    return (req: Request, res: Response, next: NextFunction) => {
      const presented = Boolean(req.get('authorization')) || Boolean((req.socket as Partial<TLSSocket>).authorized);
      if (this.open && !presented) {
        if (roles.includes('submit')) {
          req.client = ANONYMOUS;
          next();
          return;
        }
        sendProblem(res, problemFor('forbidden', 'the admin API needs a client with role admin (configure auth.clients)', req.originalUrl));
        return;
      }
      const client = this.identify(req);
      if (!client) {
        sendProblem(res, problemFor('unauthenticated', 'send a known API token (Authorization: Bearer …) or client certificate', req.originalUrl), { 'WWW-Authenticate': 'Bearer realm="antragsrouter"' });
        return;
      }
      if (!roles.some((role) => client.roles.has(role))) {
        sendProblem(res, problemFor('forbidden', `client ${client.name} does not have role ${roles.join(' or ')}`, req.originalUrl));
        return;
      }
      req.client = client;
      next();
    };
  }
}

/** Whether the client may submit for the submission's tenant and service; throws InputError (403) if not. */
export function authorizeSubmission(client: Client, facts: Facts): void {
  if (client.tenants) {
    const tenant = tenantOf(facts);
    if (!tenant || !client.tenants.has(tenant)) {
      throw new InputError('tenant-not-allowed', `client ${client.name} may not submit for tenant ${tenant ?? '(none found in the message)'}`);
    }
  }
  if (client.services) {
    const service = typeof facts.leistung === 'string' ? toLeistung(facts.leistung) : undefined;
    if (!service || !client.services.has(service)) {
      throw new InputError('service-not-allowed', `client ${client.name} may not submit for service ${service ?? '(none found in the message)'}`);
    }
  }
}
