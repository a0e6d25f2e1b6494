import { randomBytes } from 'node:crypto';
import { base64Chunks, decodeBase64 } from './base64-chunks';

const joined = (text: string) => Buffer.concat([...base64Chunks(text, 'attachment 1')]);

describe('base64Chunks', () => {
  it('decodes in pieces what Buffer decodes whole, whatever the line breaks', () => {
    for (const size of [0, 1, 2, 3, 1000, 700_001]) {
      const bytes = randomBytes(size);
      const plain = bytes.toString('base64');
      expect(joined(plain).equals(bytes)).toBe(true);
      expect(joined(plain.replace(/(.{76})/g, '$1\r\n')).equals(bytes)).toBe(true);
      expect(joined(` \n${plain.replace(/(.{3})/g, '$1 ')}\n `).equals(bytes)).toBe(true);
    }
  });

  it.each([
    ['a character outside the alphabet', 'QUJD!'],
    ['a length that is not a multiple of four', 'QUJDR'],
    ['data after the padding', 'QQ==QUJD'],
    ['url-safe characters', 'QU-_'],
  ])('refuses %s', (_case, text) => {
    expect(() => joined(text)).toThrow(expect.objectContaining({ code: 'attachment-invalid', detail: 'attachment 1: content is not valid base64' }));
  });

  it('bounds a whole decode', () => {
    const text = randomBytes(2000).toString('base64');
    expect(decodeBase64(text, 'attachment 1', 2000)).toHaveLength(2000);
    expect(() => decodeBase64(text, 'attachment 1', 1999)).toThrow(expect.objectContaining({ code: 'payload-too-large' }));
  });
});
