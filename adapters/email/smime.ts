// S/MIME (RFC 8551) for the email adapter with node-forge: sign a MIME entity (multipart/signed with a
// detached CMS SignedData, SHA-256) and/or envelope it for the back office's certificate (CMS
// EnvelopedData, AES-256-CBC, RSA key transport). Sign first, then encrypt, as RFC 8551 §3.7 describes.
// node-forge works on whole buffers: the caller bounds the size.
import forge from 'node-forge';
import MimeNode from 'nodemailer/lib/mime-node';

export interface SmimeKeys {
  /** The back office's certificate; set: encrypt. */
  recipient?: forge.pki.Certificate;
  /** The router's certificate and RSA key; set: sign. */
  signer?: { certificate: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey };
}

const binary = (bytes: Buffer) => forge.util.createBuffer(bytes.toString('binary'));
const derOf = (asn1: forge.asn1.Asn1) => Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');

/** Reads a PEM certificate; the error names what was wrong, not the content. */
export function certificateFromPem(pem: string, what: string): forge.pki.Certificate {
  try {
    return forge.pki.certificateFromPem(pem);
  } catch (error) {
    throw new Error(`${what}: not a PEM X.509 certificate with an RSA key (${(error as Error).message})`, { cause: error });
  }
}

/** Reads a PEM RSA private key, encrypted with `passphrase` if given. */
export function privateKeyFromPem(pem: string, passphrase: string | undefined, what: string): forge.pki.rsa.PrivateKey {
  const key = passphrase === undefined ? forge.pki.privateKeyFromPem(pem) : forge.pki.decryptRsaPrivateKey(pem, passphrase);
  if (!key) throw new Error(`${what}: cannot read the RSA private key (wrong passphrase?)`);
  return key;
}

/** Days until the certificate expires (negative: expired). */
export const daysLeft = (certificate: forge.pki.Certificate, now = new Date()): number =>
  Math.floor((certificate.validity.notAfter.getTime() - now.getTime()) / 86_400_000);

const NODE_OPTIONS = { newline: 'win', disableFileAccess: true, disableUrlAccess: true } as const;

/**
 * A new MIME node; as a `part` it is built without the message headers (Date, Message-ID, MIME-Version)
 * that nodemailer adds to a top-level node.
 */
export function mimeNode(contentType: string, options: { filename?: string; part?: boolean } = {}): MimeNode {
  if (!options.part) return new MimeNode(contentType, { ...NODE_OPTIONS, filename: options.filename });
  return new MimeNode('multipart/mixed', NODE_OPTIONS).createChild(contentType, { filename: options.filename });
}

/** `entity` (headers + body, CRLF) as a multipart/signed node with a detached SHA-256 signature. */
function signed(entity: Buffer, signer: NonNullable<SmimeKeys['signer']>, part: boolean): MimeNode {
  const p7 = forge.pkcs7.createSignedData();
  p7.content = binary(entity);
  p7.addCertificate(signer.certificate);
  p7.addSigner({
    key: signer.key,
    certificate: signer.certificate,
    digestAlgorithm: forge.pki.oids.sha256!,
    authenticatedAttributes: [
      { type: forge.pki.oids.contentType!, value: forge.pki.oids.data },
      { type: forge.pki.oids.messageDigest! },
      { type: forge.pki.oids.signingTime! },
    ],
  });
  p7.sign({ detached: true });
  const node = mimeNode('multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256', { part });
  // The signed entity goes in byte for byte; the CRLF before the next boundary belongs to the boundary.
  node.createChild(false).setRaw(entity);
  node.createChild('application/pkcs7-signature', { filename: 'smime.p7s' }).setContent(derOf(p7.toAsn1()));
  return node;
}

/** `entity` encrypted for `recipient` as an application/pkcs7-mime node. */
function enveloped(entity: Buffer, recipient: forge.pki.Certificate): MimeNode {
  const p7 = forge.pkcs7.createEnvelopedData();
  p7.addRecipient(recipient);
  p7.content = binary(entity);
  p7.encrypt(undefined, forge.pki.oids['aes256-CBC']);
  const node = mimeNode('application/pkcs7-mime; smime-type=enveloped-data', { filename: 'smime.p7m' });
  node.setContent(derOf(p7.toAsn1()));
  return node;
}

/**
 * The top-level node of the message: `entity` signed and/or encrypted. The caller adds the message
 * headers (From, To, Subject, Message-ID) to it and builds it.
 */
export async function protect(entity: Buffer, keys: SmimeKeys): Promise<MimeNode> {
  let node: MimeNode | undefined;
  let bytes = entity;
  if (keys.signer) {
    node = signed(bytes, keys.signer, keys.recipient !== undefined);
    if (keys.recipient) bytes = await node.build();
  }
  if (keys.recipient) node = enveloped(bytes, keys.recipient);
  if (!node) throw new Error('S/MIME needs a recipient certificate or a signing key');
  return node;
}
