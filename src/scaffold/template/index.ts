// The `scaffold-template` adapter. Created by `antragsrouter adapter new scaffold-template`: a working
// starting point that already passes the conformance suite (see scaffold-template.test.ts). Adapt it to
// your back office; keep the three outcomes honest and run the test after every change.
//
// As scaffolded it POSTs multipart/form-data to `url`: the payload as part `payload`, each attachment as a
// part `attachments`, streamed (never read whole into memory), with an Idempotency-Key header. 2xx is
// delivered (the JSON field `aktenzeichen` becomes the reference), 408/429/5xx and network errors are
// retryable, every other status is rejected. The contract is documented in src/deliver/adapter.ts and in
// the README section "Writing an adapter".
import http from 'node:http';
import type { Readable } from 'node:stream';
import axios, { type AxiosInstance } from 'axios';
import FormData from 'form-data';
import { z } from 'zod';
import { defineAdapter, type DeliveryOutcome, type DeliveryRequest } from '../../deliver/adapter';
import { readSecret, secretRefSchema } from '../../config/secret';

// Validates targets.<t>.config at start-up. Unknown keys are errors. Credentials only as secret references.
const configSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  /** Bearer token as `{ env: NAME }` or `{ file: path }`; never written into the configuration itself. */
  token: secretRefSchema.optional(),
  timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
});

export type Config = z.output<typeof configSchema>;

/** Builds the request body; every attachment is opened as a stream and piped by form-data. */
async function multipart(request: DeliveryRequest, opened: Readable[]): Promise<FormData> {
  const form = new FormData();
  const { payload } = request;
  form.append('payload', payload.body, { filename: `payload.${payload.extension}`, contentType: payload.contentType, knownLength: payload.body.length });
  for (const attachment of request.attachments) {
    const stream = await attachment.open();
    opened.push(stream);
    form.append('attachments', stream, { filename: attachment.name, contentType: attachment.mediaType, knownLength: attachment.size });
  }
  return form;
}

export default defineAdapter<Config>({
  name: 'scaffold-template',
  summary: 'TODO: one line on what this adapter delivers where',
  configSchema,
  defaultConcurrency: 4,
  create(config) {
    let client: AxiosInstance;
    let agent: http.Agent | undefined;
    let authorization: string | undefined;
    return {
      async connect() {
        // Read secrets here: a missing one fails start-up with its reference (never its value).
        authorization = config.token ? `Bearer ${readSecret(config.token)}` : undefined;
        agent = new http.Agent({ keepAlive: true });
        client = axios.create({ timeout: config.timeoutMs, validateStatus: () => true, maxRedirects: 0, maxBodyLength: Infinity, httpAgent: agent, proxy: false });
      },
      async deliver(request): Promise<DeliveryOutcome> {
        const opened: Readable[] = [];
        try {
          const form = await multipart(request, opened);
          const response = await client.post(config.url, form, {
            headers: {
              ...form.getHeaders(),
              'Content-Length': String(form.getLengthSync()),
              'Idempotency-Key': request.idempotencyKey,
              ...(authorization ? { Authorization: authorization } : {}),
            },
          });
          // Log ids, sizes, status codes; never payload content or credentials.
          request.log.debug({ event: 'scaffold-template-answer', status: response.status }, 'back office answered');
          const status = response.status;
          if (status >= 200 && status < 300) {
            const reference = (response.data as { aktenzeichen?: unknown } | undefined)?.aktenzeichen;
            return { status: 'delivered', reference: typeof reference === 'string' ? reference : undefined, detail: `HTTP ${status}` };
          }
          if (status === 408 || status === 429 || status >= 500) return { status: 'retryable', reason: 'http-status', detail: `HTTP ${status}` };
          return { status: 'rejected', reason: 'http-status', detail: `HTTP ${status}` };
        } catch (error) {
          return { status: 'retryable', reason: 'network-error', detail: `network error ${(error as { code?: string }).code ?? 'unknown'}` };
        } finally {
          for (const stream of opened) stream.destroy();
        }
      },
      async check() {
        // Honest and cheap: is the back office there? Must not throw.
        try {
          const response = await client.request({ url: config.url, method: 'OPTIONS', timeout: 5000 });
          return { ok: response.status < 500, detail: `OPTIONS answered ${response.status}` };
        } catch (error) {
          return { ok: false, detail: `unreachable (${(error as { code?: string }).code ?? 'error'})` };
        }
      },
      async close() {
        agent?.destroy();
        agent = undefined;
      },
    };
  },
});
