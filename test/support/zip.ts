// Reads a ZIP back with yauzl (the reading twin of yazl), for tests that check packages byte for byte.
import { fromBuffer, type Entry, type ZipFile } from 'yauzl';

/** Every entry of a ZIP: name → bytes, in the order of the archive. */
export async function unzip(zip: Buffer): Promise<Map<string, Buffer>> {
  const file: ZipFile = await new Promise((resolve, reject) => fromBuffer(zip, { lazyEntries: true }, (error, z) => (error ? reject(error) : resolve(z))));
  const entries = new Map<string, Buffer>();
  await new Promise<void>((resolve, reject) => {
    file.on('entry', (entry: Entry) => {
      file.openReadStream(entry, (error, stream) => {
        if (error) return reject(error);
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('error', reject);
        stream.on('end', () => {
          entries.set(entry.fileName, Buffer.concat(chunks));
          file.readEntry();
        });
      });
    });
    file.on('end', resolve);
    file.on('error', reject);
    file.readEntry();
  });
  return entries;
}
