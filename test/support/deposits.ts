// intelliForm deposit calls for tests: the fixtures, variants with another id, and the MTOM/XOP form of a call.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES } from './harness';

export const DEPOSIT_FIXTURES = ['deposit-xbau-0200-muenchen.soap.xml', 'example-soap-message.anonymised.xml'];

export const depositFixture = (name: string): string => readFileSync(path.join(FIXTURES, 'intelliform', name), 'utf8');

export interface FixtureAttachment {
  id: string;
  name: string;
  contentType: string;
  bytes: Buffer;
  sha256: string;
}

const field = (block: string, name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(block.replace(/<attributes>[\s\S]*?<\/attributes>/g, ''))?.[1] ?? '';

/** The attachments of a deposit call as sent (decoded), in order. */
export function attachmentsOf(xml: string): FixtureAttachment[] {
  return [...xml.matchAll(/<attachments>([\s\S]*?)<\/attachments>/g)].map(([, block]) => {
    const bytes = Buffer.from(field(block!, 'content'), 'base64');
    return { id: field(block!, 'id'), name: field(block!, 'name'), contentType: field(block!, 'contentType'), bytes, sha256: sha256(bytes) };
  });
}

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** The same call with another deposit id (a new transaction). */
export const withDepositId = (xml: string, id = randomDepositId()): string => xml.replace(/<id>\d{20}<\/id>/, `<id>${id}</id>`);

export const randomDepositId = (): string => BigInt(`0x${randomBytes(8).toString('hex')}`).toString().padStart(20, '0').slice(-20);

/** The call as MTOM/XOP: each attachment's content becomes a binary MIME part referenced by xop:Include. */
export function toMtom(xml: string): { body: Buffer; contentType: string } {
  const boundary = `MIMEBoundary_${randomBytes(8).toString('hex')}`;
  const parts: Buffer[] = [];
  let n = 0;
  const root = xml.replace(/<content>([^<]*)<\/content>/g, (_match, base64: string) => {
    n += 1;
    const cid = `part${n}.${randomBytes(4).toString('hex')}@antragsrouter.test`;
    parts.push(Buffer.concat([
      Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <${cid}>\r\n\r\n`),
      Buffer.from(base64, 'base64'),
    ]));
    return `<content><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:${encodeURIComponent(cid)}"/></content>`;
  });
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type="text/xml"\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <root.message@antragsrouter.test>\r\n\r\n${root}`),
    ...parts,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/related; type="application/xop+xml"; start="<root.message@antragsrouter.test>"; start-info="text/xml"; boundary="${boundary}"` };
}

/** POSTs a deposit call; the answer's status and text. */
export async function postDeposit(url: string, body: string | Buffer, contentType = 'text/xml; charset=utf-8'): Promise<{ status: number; text: string }> {
  const response = await fetch(`${url}/intelliform/deposit`, { method: 'POST', headers: { 'content-type': contentType, SOAPAction: '""' }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  return { status: response.status, text: await response.text() };
}

/** A custom parameter of a depositResponse. */
export const responseParameter = (text: string, key: string): string | undefined =>
  new RegExp(`<key>${key}</key><value>([^<]*)</value>`).exec(text)?.[1];
