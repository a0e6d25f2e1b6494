import { readFileSync } from 'node:fs';
import path from 'node:path';
import { checkMessage } from './envelope';
import { DEFAULT_XML_LIMITS } from './xml-gate';

/** The primary data of Munich's anonymised example deposit: intelliForm `myForm` XML. */
const myForm = () => {
  const soap = readFileSync(path.join(__dirname, '../../test/fixtures/intelliform/example-soap-message.anonymised.xml'), 'utf8');
  return Buffer.from(/<content>([^<]*)<\/content>/.exec(soap)![1]!, 'base64');
};

describe('myForm documents', () => {
  it('get facts from their transaction attributes, none from the user attributes', () => {
    const checked = checkMessage(myForm(), DEFAULT_XML_LIMITS);
    expect(checked.facts).toMatchObject({
      rootElement: 'myForm', standard: 'intelliForm', messageType: 'myForm', test: false,
      messageUuid: 'intelliform:0a5648ba-94ba-444a-a43c-dda0c7127012', createdAt: '2023-09-12T06:09:27.269Z',
    });
    expect(checked.extraFacts).toMatchObject({
      'transaction.id': '20230912293670444024',
      'transaction.form-id': '01/supportformular',
      'transaction.customer': 'RIT',
      'transaction.effective-login-level': 'LOW',
    });
    const text = JSON.stringify(checked.facts) + JSON.stringify(checked.extraFacts);
    for (const personal of ['Mustermann', 'BayernID', '80331', 'example.org', '1970-01-01']) expect(text).not.toContain(personal);
  });

  it('are accepted without an XÖV header even where one is required', () => {
    expect(() => checkMessage(myForm(), DEFAULT_XML_LIMITS, { requireXoevHeader: true })).not.toThrow();
  });

  it('use the sender\'s idempotency key when given', () => {
    expect(checkMessage(myForm(), DEFAULT_XML_LIMITS, { requireXoevHeader: true, idempotencyKey: 'k-1' }).facts.messageUuid).toBe('key:k-1');
  });
});
