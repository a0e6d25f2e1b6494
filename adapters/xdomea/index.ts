// The `xdomea` adapter: packs a submission as an xdomea 3.0.0 `Geschaeftsgang.Geschaeftsgang.0201`
// package (message XML + the application + its attachments in one ZIP) for import into an e-file / DMS,
// and hands the ZIP to an inner transport adapter named in its configuration (`file`, `sftp`, `http` or
// any other), which delivers it and classifies the outcome. Field mapping: README, "xdomea adapter".
import path from 'node:path';
import { z } from 'zod';
import { defineAdapter, type AdapterDefinition, type DeliveryOutcome, type DeliveryRequest } from '../../src/deliver/adapter';
import type { resolveAdapter as ResolveAdapter } from '../../src/deliver/registry';
import { buildMessage, MESSAGE_TYPE, nameUuid, type Contact, type PackagedDocument } from './message';
import { buildPackage, PackageTooLargeError, type PackageEntry } from './package';

/** The inner transport, resolved from the registry when the configuration is loaded (lazily: the registry lists this adapter too). */
function resolveTransport(adapter: string): AdapterDefinition<unknown> | undefined {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- deferred to avoid an import cycle with the registry
  const { resolveAdapter } = require('../../src/deliver/registry') as { resolveAdapter: typeof ResolveAdapter };
  return resolveAdapter(adapter);
}

const transportSchema = z.strictObject({
  /** Name of the adapter that delivers the package, e.g. `file`, `sftp`, `http`. */
  adapter: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/),
  /** That adapter's configuration, validated by its own schema. */
  config: z.record(z.string(), z.unknown()).default({}),
}).transform((transport, context) => {
  if (transport.adapter === 'xdomea') {
    context.addIssue({ code: 'custom', path: ['adapter'], message: 'an xdomea package cannot be wrapped into another' });
    return z.NEVER;
  }
  const definition = resolveTransport(transport.adapter);
  if (!definition) {
    context.addIssue({ code: 'custom', path: ['adapter'], message: `unknown adapter "${transport.adapter}"` });
    return z.NEVER;
  }
  const parsed = definition.configSchema.safeParse(transport.config);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) context.addIssue({ code: 'custom', path: ['config', ...issue.path], message: issue.message });
    return z.NEVER;
  }
  return { definition, config: parsed.data };
});

const contactSchema = z.strictObject({
  /** DVDV-style `praefix:schluessel`; default: the message's author (sender) or reader (recipient). */
  behoerdenkennung: z.string().min(1).optional(),
  institution: z.string().min(1).optional(),
  organisationseinheit: z.string().min(1).optional(),
});

const configSchema = z.strictObject({
  transport: transportSchema,
  /** Absender (and Ersteller of the Verfügung). */
  sender: contactSchema.default({}),
  /** Empfänger (and Adressat of the Verfügung). */
  recipient: contactSchema.default({}),
  /** Text of the Verfügung in the one step of the external Geschäftsgang. */
  instruction: z.string().min(1).default('Zur Bearbeitung'),
  /** EmpfangsbestaetigungAnInitiator: ask the DMS for a receipt (0202). */
  receiptToInitiator: z.boolean().default(false),
  /** SendendesSystem/InstanzID; default: the target name. */
  instanceId: z.string().min(1).optional(),
  /** Largest package in bytes; bigger ones are rejected (`xdomea-package-too-large`). */
  maxPackageSize: z.number().int().positive().default(256 * 1024 * 1024),
});

export type XdomeaAdapterConfig = z.output<typeof configSchema>;

const XS_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;
const UNSAFE = /[^\p{L}\p{N}._-]+/gu;

const fact = (request: DeliveryRequest, name: string) => {
  const value = request.facts[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
};

/** A file name reduced to letters, digits, `.`, `_`, `-`, prefixed with the document's id as xdomea requires. */
const fileNameFor = (id: string, name: string) => `${id}_${name.replace(UNSAFE, '_').replace(/^[._]+/, '') || 'dokument'}`;

const extensionOf = (name: string) => path.extname(name).slice(1).toLowerCase();

export default defineAdapter<XdomeaAdapterConfig>({
  name: 'xdomea',
  summary: 'Pack the submission as an xdomea 3.0.0 Geschaeftsgang.Geschaeftsgang.0201 ZIP and hand it to a transport adapter',
  configSchema,
  defaultConcurrency: 2,
  create(config, context) {
    const inner = config.transport.definition.create(config.transport.config, { ...context, log: context.log.child({ transport: config.transport.definition.name }) });
    return {
      connect: () => inner.connect(),
      check: () => inner.check(),
      close: () => inner.close(),
      async deliver(request): Promise<DeliveryOutcome> {
        const { submissionId, target } = request;
        // ProzessID = submissionId: the package is traceable in the status API, and stable across attempts.
        const processId = submissionId;
        const created = fact(request, 'createdAt');
        const createdAt = created && XS_DATETIME.test(created) ? created : new Date().toISOString();
        const rootElement = fact(request, 'rootElement') ?? 'nachricht';
        const standard = [fact(request, 'standard'), fact(request, 'version')].filter(Boolean).join(' ');
        const mainId = nameUuid(submissionId, target, 'dokument');
        const mainName = `${rootElement}.${request.payload.extension}`;
        const main: PackagedDocument & { reference?: string; type?: string } = {
          id: mainId,
          fileName: fileNameFor(mainId, mainName),
          originalName: mainName,
          extension: request.payload.extension.toLowerCase(),
          subject: fact(request, 'messageTypeName') ?? fact(request, 'messageType') ?? rootElement,
          reference: fact(request, 'messageUuid'),
          type: standard || undefined,
        };
        const attachments = request.attachments.map((attachment) => {
          const id = nameUuid(submissionId, target, 'anlage', attachment.id);
          return { attachment, document: { id, fileName: fileNameFor(id, attachment.name), originalName: attachment.name, extension: extensionOf(attachment.name), subject: attachment.name } };
        });
        const sender: Contact = { behoerdenkennung: fact(request, 'author'), ...config.sender };
        const recipient: Contact = { behoerdenkennung: fact(request, 'reader'), ...config.recipient };
        const message = buildMessage({
          processId,
          createdAt,
          sender,
          recipient,
          system: { instanceId: config.instanceId ?? target, product: 'antragsrouter' },
          receiptToInitiator: config.receiptToInitiator,
          main,
          attachments: attachments.map((a) => a.document),
          processStepId: nameUuid(submissionId, target, 'geschaeftsgang'),
          instruction: config.instruction,
        });
        const entries: PackageEntry[] = [
          { name: `${processId}_${MESSAGE_TYPE}.xml`, body: message },
          { name: main.fileName, body: request.payload.body },
          ...attachments.map(({ attachment, document }) => ({ name: document.fileName, open: () => attachment.open(), size: attachment.size, sha256: attachment.sha256, label: `attachment ${attachment.id}` })),
        ];
        let zip: Buffer;
        try {
          zip = await buildPackage(entries, new Date(createdAt), config.maxPackageSize);
        } catch (error) {
          if (error instanceof PackageTooLargeError) return { status: 'rejected', reason: 'xdomea-package-too-large', detail: error.message };
          request.log.warn({ event: 'xdomea-package-failed', err: { name: (error as Error).name } }, 'building the xdomea package failed');
          return { status: 'retryable', reason: 'xdomea-package-failed', detail: (error as Error).message };
        }
        request.log.info({ event: 'xdomea-package', bytes: zip.length, documents: entries.length - 1 }, 'xdomea package built');
        return inner.deliver({ ...request, payload: { body: zip, contentType: 'application/zip', extension: 'zip' }, attachments: [] });
      },
    };
  },
});
