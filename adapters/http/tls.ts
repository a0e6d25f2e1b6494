// TLS for the http adapter: a custom CA bundle (added to Node's trusted roots) and a client certificate
// for mutual TLS, from a PKCS#12 file or a PEM pair. PKCS#12 is read with node-forge rather than Node's
// own `pfx` option: files issued by public-sector PKIs often use legacy algorithms (RC2, 3DES) that
// OpenSSL 3 refuses without its legacy provider; forge reads them and hands Node plain PEM.
import { readFileSync } from 'node:fs';
import { rootCertificates, type ConnectionOptions } from 'node:tls';
import forge from 'node-forge';
import { z } from 'zod';
import { readSecret, readSecretBytes, secretRefSchema } from '../../src/config/secret';

export const tlsSchema = z.strictObject({
  /** PEM file with CA certificates trusted in addition to the public roots (e.g. a city's internal CA). */
  caFile: z.string().min(1).optional(),
  /** Client certificate for mutual TLS: a PKCS#12 file, or a PEM certificate (chain) and key. */
  clientCertificate: z.union([
    z.strictObject({ pkcs12: secretRefSchema, passphrase: secretRefSchema.optional() }),
    z.strictObject({ cert: secretRefSchema, key: secretRefSchema, passphrase: secretRefSchema.optional() }),
  ]).optional(),
  /** Server name to verify the certificate against, if it differs from the URL's host. */
  serverName: z.string().min(1).optional(),
});

export type TlsConfig = z.output<typeof tlsSchema>;

/** Key and certificate chain (leaf first) from a PKCS#12 file, as PEM. Throws with a message naming no secret. */
export function readPkcs12(der: Buffer, passphrase: string | undefined): { key: string; cert: string } {
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(der.toString('binary')), passphrase ?? '');
  } catch (error) {
    throw new Error(`PKCS#12 file cannot be read (wrong passphrase or not PKCS#12): ${(error as Error).message.split('\n')[0]}`, { cause: error });
  }
  const keys = [forge.pki.oids.pkcs8ShroudedKeyBag!, forge.pki.oids.keyBag!]
    .flatMap((bagType) => p12.getBags({ bagType })[bagType] ?? [])
    .map((bag) => bag.key)
    .filter((key): key is forge.pki.rsa.PrivateKey => key !== undefined);
  const certs = (p12.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!] ?? [])
    .map((bag) => bag.cert)
    .filter((cert): cert is forge.pki.Certificate => cert !== undefined);
  const [key] = keys;
  if (!key || keys.length > 1) throw new Error(`PKCS#12 file must hold exactly one private key (found ${keys.length})`);
  const publicPem = forge.pki.publicKeyToPem(forge.pki.setRsaPublicKey(key.n, key.e));
  const leaf = certs.find((cert) => forge.pki.publicKeyToPem(cert.publicKey) === publicPem);
  if (!leaf) throw new Error('PKCS#12 file holds no certificate for its private key');
  const chain = [leaf, ...certs.filter((cert) => cert !== leaf)];
  return { key: forge.pki.privateKeyToPem(key), cert: chain.map((cert) => forge.pki.certificateToPem(cert)).join('') };
}

/**
 * TLS options for connections to a target (the undici Agent's `connect` options), reading its secrets now
 * (at connect). Without a TLS configuration: Node's defaults (public roots, no client certificate).
 */
export function tlsConnectOptions(config: TlsConfig | undefined): ConnectionOptions {
  if (!config) return {};
  const options: ConnectionOptions = {};
  if (config.serverName) options.servername = config.serverName;
  if (config.caFile) options.ca = [...rootCertificates, readFileSync(config.caFile, 'utf8')];
  const client = config.clientCertificate;
  if (client) {
    const passphrase = client.passphrase ? readSecret(client.passphrase) : undefined;
    if ('pkcs12' in client) Object.assign(options, readPkcs12(readSecretBytes(client.pkcs12), passphrase));
    else Object.assign(options, { cert: readSecretBytes(client.cert), key: readSecretBytes(client.key), passphrase });
  }
  return options;
}
