// A throwaway PKI for TLS tests, made with node-forge: a CA, a server certificate for 127.0.0.1, a client
// certificate, a PKCS#12 file of the client's key and chain with a passphrase, and a second CA nobody
// trusts. Keys come from Node's generator (fast, native); forge builds and signs the certificates.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';

export interface Pki {
  dir: string;
  caPem: string;
  caFile: string;
  server: { key: string; cert: string };
  client: { key: string; cert: string; keyFile: string; certFile: string; p12File: string; p12Passphrase: string };
  /** A client certificate from an untrusted CA. */
  stranger: { key: string; cert: string; keyFile: string; certFile: string };
}

interface Issued {
  key: forge.pki.rsa.PrivateKey;
  cert: forge.pki.Certificate;
}

function keyPair(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const key = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
  return { privateKey: key, publicKey: forge.pki.setRsaPublicKey(key.n, key.e) };
}

let serialNumber = 1;

function issue(commonName: string, issuer: Issued | undefined, extensions: object[]): Issued {
  const keys = keyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = (serialNumber++).toString(16).padStart(2, '0');
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  const subject = [{ name: 'commonName', value: commonName }, { name: 'organizationName', value: 'Testkommune' }];
  cert.setSubject(subject);
  cert.setIssuer(issuer ? issuer.cert.subject.attributes : subject);
  cert.setExtensions(extensions);
  cert.sign(issuer?.key ?? keys.privateKey, forge.md.sha256.create());
  return { key: keys.privateKey, cert };
}

const caExtensions = [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }];
const pem = (issued: Issued) => ({ key: forge.pki.privateKeyToPem(issued.key), cert: forge.pki.certificateToPem(issued.cert) });

/** Creates the PKI in a new temp directory (the caller removes `dir`). */
export function createPki(): Pki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'http-pki-'));
  const ca = issue('Test CA', undefined, caExtensions);
  const server = issue('127.0.0.1', ca, [
    { name: 'basicConstraints', cA: false },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] },
  ]);
  const client = issue('antragsrouter-test-client', ca, [{ name: 'basicConstraints', cA: false }, { name: 'extKeyUsage', clientAuth: true }]);
  const otherCa = issue('Untrusted CA', undefined, caExtensions);
  const stranger = issue('stranger', otherCa, [{ name: 'basicConstraints', cA: false }, { name: 'extKeyUsage', clientAuth: true }]);

  const write = (name: string, content: string | Buffer) => {
    const file = path.join(dir, name);
    writeFileSync(file, content, { mode: 0o600 });
    return file;
  };
  const caPem = forge.pki.certificateToPem(ca.cert);
  const p12Passphrase = 'p12-Geheimnis-4711';
  // 3DES, as many public-sector PKCS#12 files still are.
  const p12 = forge.pkcs12.toPkcs12Asn1(client.key, [client.cert, ca.cert], p12Passphrase, { algorithm: '3des' });
  const clientPem = pem(client);
  const strangerPem = pem(stranger);
  return {
    dir,
    caPem,
    caFile: write('ca.pem', caPem),
    server: pem(server),
    client: { ...clientPem, keyFile: write('client.key', clientPem.key), certFile: write('client.crt', clientPem.cert), p12File: write('client.p12', Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary')), p12Passphrase },
    stranger: { ...strangerPem, keyFile: write('stranger.key', strangerPem.key), certFile: write('stranger.crt', strangerPem.cert) },
  };
}
