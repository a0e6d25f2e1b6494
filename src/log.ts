// The process logger (pino, JSON lines). Lines carry ids, types, keys, sizes and reasons — never payload content.
import pino, { type Logger } from 'pino';

export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: options.name ?? 'antragsrouter',
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    // Belt and braces: should a body ever reach a log call, it is censored.
    redact: { paths: ['body', 'payload', 'xml', '*.body', '*.payload', 'req.headers.authorization'], censor: '[redacted]' },
  });
}
