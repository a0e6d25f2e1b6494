// Reads an intelliForm `deposit` call (SOAP 1.1, document/literal, ApplicationService.xsd) from a SOAP
// envelope that passed the strict gate and was parsed by @xmldom/xmldom. Children of `deposit` are
// unqualified in the XSD; they are matched by local name, so a sender that qualifies them works too.
import type { Document, Element } from '@xmldom/xmldom';
import { InputError } from '../errors';

export const SOAP11_NAMESPACE = 'http://schemas.xmlsoap.org/soap/envelope/';
export const SOAP12_NAMESPACE = 'http://www.w3.org/2003/05/soap-envelope';
export const BACKEND_NAMESPACE = 'http://xmlns.cit.de/intelliform/2009/webservices/backend';
export const XOP_NAMESPACE = 'http://www.w3.org/2004/08/xop/include';

/** Where an attachment's bytes are: base64 text inside the envelope, or an MTOM/XOP part. */
export type DepositContent = { kind: 'inline'; base64: string } | { kind: 'xop'; contentId: string } | { kind: 'none' };

export interface DepositAttachment {
  id?: string;
  name?: string;
  contentType?: string;
  description?: string;
  attributes: Array<[string, string]>;
  content: DepositContent;
}

/** `depositData` as sent; every field optional, as in the XSD. */
export interface DepositData {
  id?: string;
  formId?: string;
  form?: string;
  sender?: string;
  timestamp?: string;
  caller?: string;
  client?: string;
  clientId?: string;
  customer?: string;
  customerId?: string;
  username?: string;
  primaryDataAttachmentId?: string;
  primaryFormAttachmentId?: string;
  customParameters: Array<[string, string]>;
  attachments: DepositAttachment[];
}

const SCALARS = [
  'id', 'formId', 'form', 'sender', 'timestamp', 'caller', 'client', 'clientId', 'customer', 'customerId', 'username',
  'primaryDataAttachmentId', 'primaryFormAttachmentId',
] as const;

const elements = (parent: Element): Element[] => {
  const found: Element[] = [];
  for (let node = parent.firstChild; node; node = node.nextSibling) if (node.nodeType === 1) found.push(node as Element);
  return found;
};
const child = (parent: Element, localName: string) => elements(parent).find((e) => e.localName === localName);
const text = (element: Element | undefined) => element?.textContent ?? undefined;

const entry = (element: Element): [string, string] => [text(child(element, 'key'))?.trim() ?? '', text(child(element, 'value')) ?? ''];

function readAttachment(element: Element): DepositAttachment {
  const content = child(element, 'content');
  let read: DepositContent = { kind: 'none' };
  if (content) {
    const include = elements(content).find((e) => e.localName === 'Include' && e.namespaceURI === XOP_NAMESPACE);
    if (include) {
      const href = include.getAttribute('href') ?? '';
      if (!href.startsWith('cid:')) throw new InputError('attachment-invalid', 'an xop:Include href is not a cid: URL');
      read = { kind: 'xop', contentId: decodeURIComponent(href.slice(4)) };
    } else {
      read = { kind: 'inline', base64: content.textContent ?? '' };
    }
  }
  return {
    id: text(child(element, 'id'))?.trim(),
    name: text(child(element, 'name')),
    contentType: text(child(element, 'contentType'))?.trim(),
    description: text(child(element, 'description')),
    attributes: elements(element).filter((e) => e.localName === 'attributes').map(entry),
    content: read,
  };
}

/** The operation's `depositData`; throws InputError(`soap-invalid`) for anything but a SOAP 1.1 `deposit`. */
export function readDeposit(document: Document): DepositData {
  const envelope = document.documentElement;
  if (!envelope || envelope.localName !== 'Envelope') throw new InputError('soap-invalid', 'the document is not a SOAP envelope');
  if (envelope.namespaceURI === SOAP12_NAMESPACE) throw new InputError('soap-invalid', 'SOAP 1.2 is not offered; the WSDL binds SOAP 1.1');
  if (envelope.namespaceURI !== SOAP11_NAMESPACE) throw new InputError('soap-invalid', 'the envelope is not in the SOAP 1.1 namespace');
  const body = elements(envelope).find((e) => e.localName === 'Body' && e.namespaceURI === SOAP11_NAMESPACE);
  const operation = body && elements(body)[0];
  if (!operation) throw new InputError('soap-invalid', 'the SOAP body is empty');
  if (operation.namespaceURI !== BACKEND_NAMESPACE || operation.localName !== 'deposit') {
    throw new InputError('soap-invalid', `operation {${operation.namespaceURI ?? ''}}${operation.localName} is not offered (only deposit)`);
  }
  const data = child(operation, 'data');
  if (!data) throw new InputError('deposit-invalid', 'deposit has no data element');
  const deposit: DepositData = {
    customParameters: elements(data).filter((e) => e.localName === 'customParameters').map(entry).filter(([key]) => key !== ''),
    attachments: elements(data).filter((e) => e.localName === 'attachments').map(readAttachment),
  };
  for (const field of SCALARS) {
    const value = text(child(data, field))?.trim();
    if (value) deposit[field] = value;
  }
  return deposit;
}
