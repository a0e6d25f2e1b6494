// Secrets in adapter configuration: credentials never sit in the YAML file itself. A secret field takes
// a reference to an environment variable or to a file (Docker/Kubernetes secrets, systemd credentials):
//
//   password: { env: SMTP_PASSWORD }
//   key:      { file: /run/secrets/sftp_key }
//
// Values are read when the adapter connects and at `antragsrouter check`; a missing one is reported by
// its reference (variable name or path), never by value.
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const secretRefSchema = z.union([
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name') }),
  z.strictObject({ file: z.string().min(1) }),
]);

export type SecretRef = z.output<typeof secretRefSchema>;

/** A secret could not be read; the message names the reference, never a value. */
export class SecretMissingError extends Error {
  constructor(readonly ref: SecretRef, reason: string) {
    super(`secret ${describeSecret(ref)} ${reason}`);
    this.name = 'SecretMissingError';
  }
}

export const describeSecret = (ref: SecretRef): string => ('env' in ref ? `environment variable ${ref.env}` : `file ${ref.file}`);

/** Reads a secret as bytes (keys, PKCS#12 files) from its reference. Throws SecretMissingError. */
export function readSecretBytes(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): Buffer {
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined || value === '') throw new SecretMissingError(ref, 'is not set');
    return Buffer.from(value, 'utf8');
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(ref.file);
  } catch (error) {
    throw new SecretMissingError(ref, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (bytes.length === 0) throw new SecretMissingError(ref, 'is empty');
  return bytes;
}

/** Reads a secret as text; a file's trailing newline is dropped (as `echo secret > file` leaves one). */
export function readSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): string {
  const text = readSecretBytes(ref, env).toString('utf8');
  return 'file' in ref ? text.replace(/\r?\n$/, '') : text;
}

/** Every secret reference found in a configuration value (for `antragsrouter check`), with its path. */
export function findSecretRefs(value: unknown, at: string[] = []): { path: string; ref: SecretRef }[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => findSecretRefs(item, [...at, String(i)]));
  if (!value || typeof value !== 'object') return [];
  const parsed = secretRefSchema.safeParse(value);
  if (parsed.success) return [{ path: at.join('.'), ref: parsed.data }];
  return Object.entries(value).flatMap(([key, item]) => findSecretRefs(item, [...at, key]));
}

/**
 * Every secret reference in a configuration value that cannot be read now, with its path and the problem
 * (for `antragsrouter check`). Values are read and dropped at once; no value is part of the result.
 */
export function findMissingSecrets(value: unknown, at: string[] = [], env: NodeJS.ProcessEnv = process.env): { path: string; ref: SecretRef; problem: string }[] {
  return findSecretRefs(value, at).flatMap(({ path, ref }) => {
    try {
      readSecretBytes(ref, env);
      return [];
    } catch (error) {
      if (error instanceof SecretMissingError) return [{ path, ref, problem: error.message }];
      throw error;
    }
  });
}
