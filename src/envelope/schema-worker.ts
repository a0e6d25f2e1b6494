// The XSD validation worker: compiles every configured schema set once with libxml2 (its WebAssembly
// build, libxml2-wasm) and then validates messages on request, off the main thread's event loop.
// Schema files are read only while compiling; when a message is validated, no file and no network
// resource can be opened (the only input provider refuses everything then, and the WebAssembly build
// has no network code at all). Messages have passed the strict gate (no DOCTYPE, no entities) before.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import type { CompileRequest, ValidateRequest, WorkerAnswer, WorkerRequest, RawViolation } from './schema-protocol';

import type * as libxml2 from 'libxml2-wasm' with { 'resolution-mode': 'import' };

type Libxml2 = typeof libxml2;

/** Schema files may be read only while a schema set is being compiled. */
let compiling = false;

function registerInputProvider(lib: Libxml2): void {
  const toPath = (url: string) => (url.startsWith('file:') ? fileURLToPath(url) : url);
  lib.xmlRegisterInputProvider({
    match: (url) => compiling && (url.startsWith('file:') || path.isAbsolute(url)),
    open: (url) => {
      if (!compiling) return undefined;
      try {
        return openSync(toPath(url), 'r');
      } catch {
        return undefined;
      }
    },
    read: (fd, buffer) => {
      try {
        return readSync(fd, buffer);
      } catch {
        return -1;
      }
    },
    close: (fd) => {
      closeSync(fd);
      return true;
    },
  });
}

/** Reads `targetNamespace` of an XSD without resolving anything it refers to. */
function targetNamespace(lib: Libxml2, file: string): string {
  const document = lib.XmlDocument.fromBuffer(readFileSync(file), { url: pathToFileURL(file).href, option: lib.ParseOption.XML_PARSE_NONET | lib.ParseOption.XML_PARSE_NO_XXE });
  try {
    return document.root.attr('targetNamespace')?.value ?? '';
  } finally {
    document.dispose();
  }
}

const escapeAttribute = (value: string) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/**
 * One file compiles as it is; several files of one target namespace compile as one schema that includes
 * them all (e.g. every XBau message group), so one set covers every message type of a standard.
 */
function compile(lib: Libxml2, files: readonly string[]): InstanceType<Libxml2['XsdValidator']> {
  compiling = true;
  try {
    const options = { option: lib.ParseOption.XML_PARSE_NONET | lib.ParseOption.XML_PARSE_NO_XXE };
    if (files.length === 1) {
      const file = files[0]!;
      const document = lib.XmlDocument.fromBuffer(readFileSync(file), { ...options, url: pathToFileURL(file).href });
      try {
        return lib.XsdValidator.fromDoc(document);
      } finally {
        document.dispose();
      }
    }
    const namespaces = new Set(files.map((file) => targetNamespace(lib, file)));
    if (namespaces.size > 1) throw new Error(`the files have different target namespaces (${[...namespaces].join(', ')}); list files of one namespace, the others are imported by them`);
    const [namespace] = namespaces;
    const includes = files.map((file) => `<xs:include schemaLocation="${escapeAttribute(pathToFileURL(file).href)}"/>`).join('');
    const wrapper = `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="${escapeAttribute(namespace ?? '')}">${includes}</xs:schema>`;
    const document = lib.XmlDocument.fromString(wrapper, { ...options, url: pathToFileURL(path.join(path.dirname(files[0]!), '.antragsrouter-schema-set.xsd')).href });
    try {
      return lib.XsdValidator.fromDoc(document);
    } finally {
      document.dispose();
    }
  } finally {
    compiling = false;
  }
}

function describe(error: unknown): string {
  const details = (error as { details?: { message: string; file?: string; line?: number }[] }).details;
  const first = details?.find((d) => d.message.trim());
  if (first) return `${first.message.trim()}${first.file ? ` (${first.file.replace(/^file:\/\//, '')}${first.line ? `:${first.line}` : ''})` : ''}`;
  return (error as Error).message;
}

async function main(): Promise<void> {
  const port = parentPort!;
  const lib: Libxml2 = await import('libxml2-wasm');
  registerInputProvider(lib);
  const validators = new Map<string, InstanceType<Libxml2['XsdValidator']>>();

  const onCompile = (request: CompileRequest): WorkerAnswer => {
    for (const set of request.sets) {
      try {
        validators.set(set.id, compile(lib, set.files));
      } catch (error) {
        return { kind: 'compile-failed', seq: request.seq, id: set.id, detail: describe(error) };
      }
    }
    return { kind: 'compiled', seq: request.seq };
  };

  const onValidate = (request: ValidateRequest): WorkerAnswer => {
    const validator = validators.get(request.id);
    if (!validator) return { kind: 'failed', seq: request.seq, detail: `no schema set ${request.id}` };
    const option = lib.ParseOption.XML_PARSE_NONET | lib.ParseOption.XML_PARSE_NO_XXE;
    let document;
    try {
      document = typeof request.message === 'string'
        ? lib.XmlDocument.fromString(request.message, { option: option | lib.ParseOption.XML_PARSE_IGNORE_ENC })
        : lib.XmlDocument.fromBuffer(request.message, { option });
    } catch (error) {
      return { kind: 'invalid', seq: request.seq, violations: toViolations(error) };
    }
    try {
      validator.validate(document);
      return { kind: 'valid', seq: request.seq };
    } catch (error) {
      if (error instanceof lib.XmlValidateError) return { kind: 'invalid', seq: request.seq, violations: toViolations(error) };
      return { kind: 'failed', seq: request.seq, detail: (error as Error).name };
    } finally {
      document.dispose();
    }
  };

  port.on('message', (request: WorkerRequest) => {
    port.postMessage(request.kind === 'compile' ? onCompile(request) : onValidate(request));
  });
  port.postMessage({ kind: 'ready', seq: 0 } satisfies WorkerAnswer);
}

function toViolations(error: unknown): RawViolation[] {
  const details = (error as { details?: { message: string; level: number; line: number; xpath?: string }[] }).details ?? [];
  return details.filter((d) => d.level >= 2).map((d) => ({ message: d.message.trim(), line: d.line, path: d.xpath }));
}

main().catch((error: unknown) => {
  parentPort?.postMessage({ kind: 'start-failed', seq: 0, detail: (error as Error).message } satisfies WorkerAnswer);
});
