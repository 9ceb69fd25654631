// A self-signed certificate for names nobody gave a certificate for (the default
// certificate, first runs, tests). The key comes from node:crypto, which is native
// and fast; node-forge only assembles and signs the X.509 structure, reading an RSA
// key in PKCS#1 form (forge cannot read EC keys, so RSA it is).

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** X.509 limits a CN to 64 characters; a longer first name still goes in the SAN. */
const MAX_CN = 64;

export function selfSignedCertificate(names: string[], days = 365): { certificate: string; key: string } {
  if (names.length === 0) throw new TypeError('selfSignedCertificate needs at least one name');
  if (!(days > 0)) throw new RangeError(`days must be positive, got ${days}`);
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
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
  cert.sign(forgeKey, forge.md.sha256.create());
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
