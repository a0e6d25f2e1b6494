// Names and arguments of the RabbitMQ topology, declared idempotently under a per-deployment prefix.
//
//   exchange <p>            direct; routing key = pipeline queue name ("route", "deliver.<target>")
//   queue    <p>.<queue>    quorum work queue, bound with its own name; x-delivery-limit dead-letters poison
//   exchange <p>.delay.<d>  fanout into queue <p>.delay.<d>: quorum, TTL d, dead-letters back into <p> under
//                           the message's original routing key, i.e. into the work queue it came from
//   exchange <p>.dead       fanout into queue <p>.dead: the dead letters, reason and history in headers
//
// Delays use a fixed ladder of TTL queues rather than per-message TTLs: RabbitMQ expires messages only at
// the head of a queue, so mixed TTLs in one queue would hold short delays behind long ones
// (https://www.rabbitmq.com/docs/ttl#per-message-ttl-caveats). Quorum queues keep all of it replicated and
// durable across broker restarts; dead-lettering is `at-least-once`, so nothing is lost on the way
// (https://www.rabbitmq.com/docs/quorum-queues#dead-lettering).
import type { Options } from 'amqplib';

/** Delay steps in ms; a retry waits for the smallest step not shorter than asked (the last one at most). */
export const DELAY_LADDER_MS = [250, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000] as const;

/** Retries shorter than this go straight back into the work queue. */
export const IMMEDIATE_MS = 50;

export function delayStep(delayMs: number): number | undefined {
  if (delayMs < IMMEDIATE_MS) return undefined;
  return DELAY_LADDER_MS.find((step) => step >= delayMs) ?? DELAY_LADDER_MS[DELAY_LADDER_MS.length - 1];
}

const label = (ms: number) => (ms % 1000 ? `${ms}ms` : `${ms / 1000}s`);

export class Topology {
  constructor(readonly prefix: string, readonly deliveryLimit: number) {}

  get exchange(): string {
    return this.prefix;
  }

  get deadExchange(): string {
    return `${this.prefix}.dead`;
  }

  get deadQueue(): string {
    return `${this.prefix}.dead`;
  }

  workQueue(queue: string): string {
    return `${this.prefix}.${queue}`;
  }

  delayExchange(step: number): string {
    return `${this.prefix}.delay.${label(step)}`;
  }

  delayQueue(step: number): string {
    return this.delayExchange(step);
  }

  workQueueOptions(): Options.AssertQueue {
    return {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        // Hand-overs without an ack (crashes, channel losses) before the broker dead-letters the message itself.
        'x-delivery-limit': this.deliveryLimit,
        'x-dead-letter-exchange': this.deadExchange,
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
      },
    };
  }

  delayQueueOptions(step: number): Options.AssertQueue {
    return {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-message-ttl': step,
        'x-dead-letter-exchange': this.exchange,
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
      },
    };
  }

  deadQueueOptions(): Options.AssertQueue {
    return { durable: true, arguments: { 'x-queue-type': 'quorum' } };
  }

  /** Every exchange and queue name of this prefix for the given pipeline queues (for tests and cleanup). */
  names(queues: Iterable<string>): { exchanges: string[]; queues: string[] } {
    const delays = DELAY_LADDER_MS.map((step) => this.delayExchange(step));
    return {
      exchanges: [this.exchange, this.deadExchange, ...delays],
      queues: [...[...queues].map((q) => this.workQueue(q)), this.deadQueue, ...delays],
    };
  }
}
