// The command line's side of the admin API: the router's URL and the operator's token come from the
// environment (ANTRAGSROUTER_URL, ANTRAGSROUTER_TOKEN) or a token file — never from the command line,
// where other users of the machine could read them in the process list.
import { readFileSync } from 'node:fs';
import type { SubmissionListItem } from '../store/store';

export interface AdminConnection {
  url: string;
  token?: string;
}

export function connectionFrom(options: { url?: string; tokenFile?: string }, env: NodeJS.ProcessEnv = process.env): AdminConnection {
  const token = options.tokenFile ? readFileSync(options.tokenFile, 'utf8').trim() : env.ANTRAGSROUTER_TOKEN || undefined;
  return { url: options.url ?? env.ANTRAGSROUTER_URL ?? 'http://127.0.0.1:8080', token };
}

/** An answer that is not 2xx, with the problem's code and detail. */
export class AdminError extends Error {
  constructor(readonly status: number, readonly code: string | undefined, detail: string) {
    super(`${status}${code ? ` ${code}` : ''}: ${detail}`);
    this.name = 'AdminError';
  }
}

export async function adminCall<T>(connection: AdminConnection, method: 'GET' | 'POST', pathAndQuery: string, body?: unknown): Promise<T> {
  const response = await fetch(new URL(pathAndQuery, connection.url), {
    method,
    headers: {
      ...(connection.token ? { authorization: `Bearer ${connection.token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) {
    const problem = (() => {
      try {
        return JSON.parse(text) as { code?: string; detail?: string };
      } catch {
        return { detail: text.slice(0, 200) };
      }
    })();
    throw new AdminError(response.status, problem.code, problem.detail ?? response.statusText);
  }
  return JSON.parse(text) as T;
}

export interface ListFilter {
  state?: string[];
  target?: string;
  deliveryState?: string;
  route?: string;
  tenant?: string;
}

/** Every submission matching the filter, page by page. */
export async function* listAll(connection: AdminConnection, filter: ListFilter, pageSize = 200): AsyncGenerator<SubmissionListItem> {
  let after: string | undefined;
  do {
    const query = new URLSearchParams();
    for (const state of filter.state ?? []) query.append('state', state);
    for (const key of ['target', 'deliveryState', 'route', 'tenant'] as const) if (filter[key]) query.set(key, filter[key]);
    query.set('limit', String(pageSize));
    if (after) query.set('after', after);
    const page = await adminCall<{ items: SubmissionListItem[]; next?: string }>(connection, 'GET', `/api/v1/admin/submissions?${query}`);
    yield* page.items;
    after = page.next;
  } while (after);
}
