// Messages between the schema validator (main thread) and its worker (schema-worker.ts).

/** One violation as libxml2 reports it: its message (may echo values; cleaned before leaving), line, element path. */
export interface RawViolation {
  message: string;
  line: number;
  path?: string;
}

export interface CompileRequest {
  kind: 'compile';
  seq: number;
  sets: { id: string; files: string[] }[];
}

export interface ValidateRequest {
  kind: 'validate';
  seq: number;
  /** Schema set id. */
  id: string;
  /** The message: bytes as received (the XML declaration's encoding applies), or already decoded text. */
  message: string | Uint8Array;
}

export type WorkerRequest = CompileRequest | ValidateRequest;

export type WorkerAnswer =
  | { kind: 'ready'; seq: 0 }
  | { kind: 'start-failed'; seq: 0; detail: string }
  | { kind: 'compiled'; seq: number }
  | { kind: 'compile-failed'; seq: number; id: string; detail: string }
  | { kind: 'valid'; seq: number }
  | { kind: 'invalid'; seq: number; violations: RawViolation[] }
  | { kind: 'failed'; seq: number; detail: string };
