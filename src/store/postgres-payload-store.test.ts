import { randomBytes } from 'node:crypto';
import { binaryCopyFields } from './postgres-payload-store';

/** Binary COPY output of one bytea column with the given field values. */
const copyOutput = (fields: Buffer[]) => Buffer.concat([
  Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8),
  ...fields.flatMap((field) => {
    const header = Buffer.alloc(6);
    header.writeInt16BE(1, 0);
    header.writeInt32BE(field.length, 2);
    return [header, field];
  }),
  Buffer.from([0xff, 0xff]),
]);

async function collect(pieces: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const piece of binaryCopyFields((async function* () { yield* pieces; })())) out.push(piece);
  return Buffer.concat(out);
}

describe('binaryCopyFields', () => {
  const fields = [randomBytes(300), randomBytes(1), randomBytes(0), randomBytes(77)];
  const output = copyOutput(fields);

  it('passes the field bytes on, wherever the output is split', async () => {
    for (let split = 1; split < output.length; split += 1) {
      const pieces = [];
      for (let at = 0; at < output.length; at += split) pieces.push(output.subarray(at, at + split));
      expect((await collect(pieces)).equals(Buffer.concat(fields))).toBe(true);
    }
  });

  it('fails when the output ends before its trailer', async () => {
    await expect(collect([output.subarray(0, output.length - 2)])).rejects.toThrow('COPY output ended early');
  });
});
