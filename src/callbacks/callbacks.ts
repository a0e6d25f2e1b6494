// Status callbacks to the sending client (the form service): delivered, rejected, dead-lettered and the
// back office's receipt. Queued durably on the transport (queue `callback`), POSTed signed (HMAC-SHA512
// over `<timestamp>.<body>`), retried with backoff until answered 2xx, dead-lettered after MAX_ATTEMPTS.
// The body carries ids, states, the file number and reason codes — never personal content.
import { createHash } from 'node:crypto';
import axios, { type AxiosInstance } from 'axios';
import type { Logger } from 'pino';
import type { RawConfig } from '../config/schema';
import { readSecret } from '../config/secret';
import type { Store } from '../store/store';
import type { Disposition, ReceivedMessage, Transport } from '../transport/transport';
import { EVENT_HEADER, signCallback, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature';

export const CALLBACK_QUEUE = 'callback';
export type CallbackEvent = 'delivered' | 'rejected' | 'dead-lettered' | 'receipt';

/** Attempts per callback; backoff doubles from 2 s up to 10 min (about 1.5 hours in all). */
const MAX_ATTEMPTS = 15;
const backoff = (attempt: number) => Math.min(600_000, 2000 * 2 ** (attempt - 1));

type ClientCallback = NonNullable<NonNullable<RawConfig['auth']>['clients'][string]['callback']>;

export class Callbacks {
  private readonly http: AxiosInstance = axios.create({ validateStatus: () => true, maxRedirects: 0, responseType: 'text' });
  private readonly secrets = new Map<string, string>();

  constructor(
    private readonly clients: Record<string, { callback?: ClientCallback }>,
    private readonly store: Store,
    private readonly transport: Transport,
    private readonly log: Logger,
  ) {
    // Read every callback secret at start-up: a missing one fails the start, naming its reference.
    for (const [name, client] of Object.entries(clients)) if (client.callback) this.secrets.set(name, readSecret(client.callback.secret));
  }

  start(): void {
    this.transport.consume(CALLBACK_QUEUE, 4, (message) => this.send(message));
  }

  /**
   * Queues a callback if the submission's client wants this event. `version` distinguishes repeated
   * events of one kind (e.g. the delivery's update time): the event id is stable for the same version, so
   * a callback queued twice (after a crash) is recognised by the receiver.
   */
  async notify(submissionId: string, client: string | undefined, event: CallbackEvent, target: string, version: string): Promise<void> {
    const callback = client ? this.clients[client]?.callback : undefined;
    if (!callback || !callback.events.includes(event)) return;
    const eventId = createHash('sha256').update(`${submissionId}|${target}|${event}|${version}`).digest('hex').slice(0, 32);
    await this.transport.publish(CALLBACK_QUEUE, { key: eventId, body: { submissionId, client: client!, event, target, eventId } });
  }

  private async send(message: ReceivedMessage): Promise<Disposition> {
    const { submissionId, client, event, target, eventId } = message.body as Record<string, string>;
    const callback = this.clients[client!]?.callback;
    const log = this.log.child({ submissionId, client, event, target, eventId });
    if (!callback) {
      log.warn('callback for a client that no longer has one configured; dropped');
      return { kind: 'ack' };
    }
    const status = await this.store.get(submissionId!);
    if (!status) return { kind: 'ack' };
    const delivery = status.deliveries.find((d) => d.target === target);
    const body = JSON.stringify({
      id: eventId, event, at: new Date().toISOString(), submissionId, messageUuid: status.messageUuid, state: status.state,
      target, deliveryState: delivery?.state, reference: delivery?.reference, reason: delivery?.reason, receipt: delivery?.receipt,
    });
    const timestamp = Math.floor(Date.now() / 1000);
    try {
      const response = await this.http.post(callback.url, body, {
        timeout: callback.timeoutMs,
        headers: {
          'content-type': 'application/json', [EVENT_HEADER]: eventId!, [TIMESTAMP_HEADER]: String(timestamp),
          [SIGNATURE_HEADER]: signCallback(this.secrets.get(client!)!, timestamp, body),
        },
      });
      if (response.status >= 200 && response.status < 300) {
        log.info({ event: 'callback-sent', status: response.status, attempt: message.deliveryCount }, 'status callback sent');
        return { kind: 'ack' };
      }
      return this.again(message, log, `HTTP ${response.status}`);
    } catch (error) {
      return this.again(message, log, `network error ${(error as { code?: string }).code ?? 'unknown'}`);
    }
  }

  private again(message: ReceivedMessage, log: Logger, detail: string): Disposition {
    if (message.deliveryCount >= MAX_ATTEMPTS) {
      log.error({ event: 'callback-dead', detail, attempts: message.deliveryCount }, 'status callback given up');
      return { kind: 'dead', reason: 'callback-failed' };
    }
    const delayMs = backoff(message.deliveryCount);
    log.warn({ event: 'callback-retry', detail, attempt: message.deliveryCount, delayMs }, 'status callback failed; will retry');
    return { kind: 'retry', delayMs };
  }
}
