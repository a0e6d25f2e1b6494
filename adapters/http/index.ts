// The `http` adapter: POSTs (or PUTs) the mapped payload to a back office's URL with axios.
// Status handling is configuration with safe defaults: 2xx delivered; 408, 429, 5xx, network errors and
// timeouts retryable; every other status rejected. One Idempotency-Key per submission and target.
import axios, { type AxiosInstance } from 'axios';
import { z } from 'zod';
import { defineAdapter, type DeliveryOutcome } from '../../src/deliver/adapter';
import { multipartBody } from './multipart-body';

/** A status code (`404`) or class (`4xx`). */
const statusPattern = z.string().regex(/^[1-5]([0-9]{2}|xx)$/, 'a status code like 503 or a class like 5xx');

const configSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  method: z.enum(['POST', 'PUT']).default('POST'),
  /** Milliseconds before an attempt counts as timed out (retryable). */
  timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  /** Extra request headers (no secrets here: credentials come with issue #5's auth options). */
  headers: z.record(z.string(), z.string()).default({}),
  idempotencyHeader: z.string().default('Idempotency-Key'),
  /** Statuses that count as delivered; default 2xx. */
  deliveredOn: z.array(statusPattern).default(['2xx']),
  /** Statuses that count as retryable; default 408, 429, 5xx. Everything else is rejected. */
  retryOn: z.array(statusPattern).default(['408', '429', '5xx']),
  /** Response header or JSON field that carries the back office's reference (file number). */
  referenceHeader: z.string().optional(),
  referenceField: z.string().optional(),
});

export type HttpAdapterConfig = z.output<typeof configSchema>;

const matches = (patterns: string[], status: number) =>
  patterns.some((p) => (p.endsWith('xx') ? Math.floor(status / 100) === Number(p[0]) : Number(p) === status));

/** Seconds or HTTP date in Retry-After, as milliseconds. */
function retryAfter(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export default defineAdapter<HttpAdapterConfig>({
  name: 'http',
  summary: 'POST or PUT the mapped payload to a back-office URL',
  configSchema,
  defaultConcurrency: 8,
  create(config) {
    let client: AxiosInstance;
    return {
      async connect() {
        client = axios.create({
          timeout: config.timeoutMs,
          // Classify every status ourselves; never follow redirects with a payload.
          validateStatus: () => true,
          maxRedirects: 0,
          maxBodyLength: Infinity,
          maxContentLength: 1024 * 1024,
          responseType: 'json',
        });
      },
      async deliver(request): Promise<DeliveryOutcome> {
        try {
          // With attachments: multipart/form-data, payload first, attachments streamed after it.
          const body = request.attachments.length
            ? multipartBody(request.payload, request.attachments)
            : { contentType: request.payload.contentType, body: request.payload.body };
          const response = await client.request({
            url: config.url,
            method: config.method,
            data: body.body,
            headers: {
              ...config.headers,
              'Content-Type': body.contentType,
              [config.idempotencyHeader]: request.idempotencyKey,
              'X-Submission-Id': request.submissionId,
            },
          });
          const status = response.status;
          if (matches(config.deliveredOn, status)) {
            const fromHeader = config.referenceHeader ? response.headers[config.referenceHeader.toLowerCase()] : undefined;
            const data = response.data as Record<string, unknown> | undefined;
            const fromBody = config.referenceField && data && typeof data === 'object' ? data[config.referenceField] : undefined;
            const reference = [fromHeader, fromBody].find((v) => typeof v === 'string' || typeof v === 'number');
            return { status: 'delivered', reference: reference === undefined ? undefined : String(reference), detail: `HTTP ${status}` };
          }
          if (matches(config.retryOn, status)) {
            return { status: 'retryable', reason: 'http-status', detail: `HTTP ${status}`, retryAfterMs: retryAfter(response.headers['retry-after']) };
          }
          return { status: 'rejected', reason: 'http-status', detail: `HTTP ${status}` };
        } catch (error) {
          const code = (error as { code?: string }).code ?? 'unknown';
          if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') return { status: 'retryable', reason: 'http-timeout', detail: `no answer within ${config.timeoutMs} ms` };
          return { status: 'retryable', reason: 'network-error', detail: `network error ${code}` };
        }
      },
      async check() {
        try {
          const response = await client.request({ url: config.url, method: 'OPTIONS', timeout: Math.min(config.timeoutMs, 5000) });
          return { ok: response.status < 500, detail: `OPTIONS answered ${response.status}` };
        } catch (error) {
          return { ok: false, detail: `unreachable (${(error as { code?: string }).code ?? 'error'})` };
        }
      },
      async close() {},
    };
  },
});
