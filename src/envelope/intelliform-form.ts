// intelliForm's own form data document (`myForm`): the routing facts of its transaction attributes (`t:*`,
// namespace http://xmlns.cit.de/intelliform/transaction). The user attributes (`u:*`, from the citizen
// account, e.g. BayernID) are personal and never become facts; routes reach them only by XPath.
import type { XmlOutline } from './xml-gate';
import type { HeaderOptions, XoevFacts } from './xoev-header';

export const TRANSACTION_NAMESPACE = 'http://xmlns.cit.de/intelliform/transaction';
export const USER_NAMESPACE = 'http://xmlns.cit.de/intelliform/user';

/** Whether the document is intelliForm's form data: root `myForm` in no namespace. */
export const isMyForm = (outline: XmlOutline): boolean => outline.root.localName === 'myForm' && outline.root.namespace === '';

/** The transaction attributes as facts `transaction.<name>`, e.g. `transaction.form-id`. */
export function transactionFacts(outline: XmlOutline): Record<string, string> {
  const prefix = `{${TRANSACTION_NAMESPACE}}`;
  const facts: Record<string, string> = {};
  for (const [name, value] of Object.entries(outline.root.qualifiedAttributes)) {
    if (name.startsWith(prefix)) facts[`transaction.${name.slice(prefix.length)}`] = value;
  }
  return facts;
}

/**
 * The envelope facts of a `myForm` document, in the shape of an XÖV message's: standard `intelliForm`,
 * message type `myForm`, the transaction uuid (`t:uuid`) as message id unless the sender gave a key.
 */
export function readMyFormFacts(outline: XmlOutline, options: HeaderOptions): XoevFacts {
  const transaction = transactionFacts(outline);
  const key = options.idempotencyKey?.trim();
  const uuid = transaction['transaction.uuid'];
  return {
    rootElement: outline.root.localName,
    rootNamespace: '',
    standard: 'intelliForm',
    version: '',
    test: false,
    header: '',
    headerNamespace: '',
    messageUuid: key ? `key:${key}` : uuid ? `intelliform:${uuid}` : `sha256:${options.bodySha256()}`,
    messageType: 'myForm',
    createdAt: transaction['transaction.timestamp'] ?? new Date().toISOString(),
  };
}
