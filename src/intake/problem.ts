// RFC 7807 problem details: the one place where an error becomes an HTTP answer.
import type { Response } from 'express';
import type { InputError} from '../errors';
import { REASONS, type ReasonCode } from '../errors';

export const PROBLEM_TYPE_BASE = 'urn:antragsrouter:problem:';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** The stable reason code (see the README's table). */
  code: ReasonCode;
  instance?: string;
  /** Extension members of some problems, e.g. `violations` of `schema-invalid`. */
  [extension: string]: unknown;
}

export function problemFor(code: ReasonCode, detail: string, instance?: string, status?: number): Problem {
  return { type: PROBLEM_TYPE_BASE + code, title: REASONS[code].title, status: status ?? (REASONS[code].status || 400), detail, code, instance };
}

export function sendProblem(res: Response, problem: Problem, headers: Record<string, string> = {}): void {
  res.status(problem.status).set(headers).type('application/problem+json').send(JSON.stringify(problem));
}

export function sendInputError(res: Response, error: InputError, instance?: string): void {
  const problem = problemFor(error.code, error.detail, instance, error.status);
  // Extension members follow the standard ones and can never replace them.
  const extensions = Object.entries(error.extensions ?? {}).filter(([key]) => !(key in problem));
  sendProblem(res, { ...problem, ...Object.fromEntries(extensions) });
}
