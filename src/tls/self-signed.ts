// A self-signed certificate for names nobody gave a certificate for (the default
// certificate, first runs, tests). The key comes from node:crypto, which is native
// and fast; node-forge only assembles and signs the X.509 structure, reading an RSA
// key in PKCS#1 form (forge cannot read EC keys, so RSA it is).

import { generateKeyPair, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** X.509 limits a CN to 64 characters; a longer first name still goes in the SAN. */
const MAX_CN = 64;

export interface SelfSigned {
  certificate: string;
  key: string;
}

export function selfSignedCertificate(names: string[], days = 365): SelfSigned {
  checkArgs(names, days);
  return build(names, days, generateKeyPairSync('rsa', { modulusLength: RSA_BITS }).privateKey);
}

/** The same, with the key generated off the event loop (RSA keygen takes 0.1 to 1 s). */
export async function selfSignedCertificateAsync(names: string[], days = 365): Promise<SelfSigned> {
  checkArgs(names, days);
  const privateKey = await new Promise<KeyObject>((resolve, reject) =>
    generateKeyPair('rsa', { modulusLength: RSA_BITS }, (err, _pub, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
  return build(names, days, privateKey);
}

const RSA_BITS = 2048;

function checkArgs(names: string[], days: number): void {
  if (names.length === 0) throw new TypeError('selfSignedCertificate needs at least one name');
  if (!(days > 0)) throw new RangeError(`days must be positive, got ${days}`);
}

function build(names: string[], days: number, privateKey: KeyObject): SelfSigned {
  const pkcs1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(pkcs1);

  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e);
  cert.serialNumber = randomSerial();
  const now = Date.now();
  // An hour back so a peer whose clock is a little behind still accepts it.
  cert.validity.notBefore = new Date(now - HOUR_MS);
  cert.validity.notAfter = new Date(now + days * DAY_MS);
  const subject = [{ name: 'commonName', value: (names[0] as string).slice(0, MAX_CN) }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      // forge's altName types: 2 = dNSName, 7 = iPAddress.
      altNames: names.map((n) => (isIP(n) === 0 ? { type: 2, value: n } : { type: 7, ip: n })),
    },
  ]);
  // forge assembles the structure; node:crypto signs it (forge's pure-JS RSA took ~0.5 s).
  const oid = forge.pki.oids['sha256WithRSAEncryption'] as string;
  cert.signatureOid = oid;
  cert.siginfo.algorithmOid = oid;
  const tbs = forge.asn1.toDer(tbsOf(cert)).getBytes();
  cert.signature = sign('sha256', Buffer.from(tbs, 'binary'), privateKey).toString('binary');
  return {
    certificate: forge.pki.certificateToPem(cert).replaceAll('\r\n', '\n'),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** 16 random bytes, top byte in 0x40–0x7f: positive and minimally encoded in DER. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] as number) & 0x3f) | 0x40;
  return bytes.toString('hex');
}

/** forge exports getTBSCertificate, but @types/node-forge does not declare it. */
function tbsOf(cert: forge.pki.Certificate): forge.asn1.Asn1 {
  const pki = forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 };
  return pki.getTBSCertificate(cert);
}
