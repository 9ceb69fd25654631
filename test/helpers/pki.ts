// Helpers for the PKI connector tests: run `kakehi pki` as a real process, ask a
// real TLS handshake which certificate a listener serves, poll until something
// holds, and make many leaf certificates quickly (node-forge, one shared key) for
// the thousand-certificate test.

import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import forge from 'node-forge';
import type { TestCa } from './certs.js';
import { derSha256 } from './certs.js';
import { type ConnectorProcess, eventually, startConnector } from './connector-process.js';

export type { LogLine } from './connector-process.js';
export { eventually, withLogs } from './connector-process.js';

export interface PkiProcess extends ConnectorProcess {
  status(): Promise<PkiStatus>;
}

export interface PkiStatus {
  healthy: boolean;
  connected: boolean;
  pairs: {
    pair: string;
    layout: string;
    state: string;
    serving: { fingerprint: string; names: string[]; serial: string } | null;
    last_error: string | null;
  }[];
  [k: string]: unknown;
}

/** Starts `kakehi pki` with these arguments (plus --listen 127.0.0.1:0) and waits until it listens. */
export async function startPki(
  args: string[],
  opts: { timeoutMs?: number; logLevel?: string } = {},
): Promise<PkiProcess> {
  const c = await startConnector('pki', args, opts);
  return {
    ...c,
    async status() {
      return JSON.parse((await c.get('/status')).text) as PkiStatus;
    },
  };
}

export interface Served {
  fingerprint: string;
  serial: string;
  names: string;
  authorized: boolean;
  authorizationError: string | undefined;
}

/** One TLS handshake with SNI `servername`; what certificate the listener served. */
export function servedCertificate(
  port: number,
  servername: string,
  opts: { ca?: string | string[]; host?: string; timeoutMs?: number } = {},
): Promise<Served> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: opts.host ?? '127.0.0.1',
      port,
      servername,
      ...(opts.ca ? { ca: opts.ca } : {}),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    socket.setTimeout(opts.timeoutMs ?? 5_000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      const out: Served = {
        fingerprint: (cert.fingerprint256 ?? '').replaceAll(':', '').toLowerCase(),
        serial: (cert.serialNumber ?? '').toUpperCase(),
        names: cert.subjectaltname ?? '',
        authorized: socket.authorized,
        authorizationError: socket.authorizationError ? String(socket.authorizationError) : undefined,
      };
      socket.end();
      resolve(out);
    });
  });
}

/** Waits until a handshake for `servername` serves the certificate with this fingerprint. */
export function waitServed(
  port: number,
  servername: string,
  fingerprint: string,
  opts: { timeoutMs?: number; ca?: string } = {},
): Promise<Served> {
  return eventually(
    async () => {
      const s = await servedCertificate(port, servername, opts.ca ? { ca: opts.ca } : {});
      if (s.fingerprint !== fingerprint)
        throw new Error(`${servername} served ${s.fingerprint}, not ${fingerprint}`);
      return s;
    },
    { timeoutMs: opts.timeoutMs ?? 15_000, what: `${servername} to serve ${fingerprint.slice(0, 16)}…` },
  );
}

export interface BulkLeaf {
  name: string;
  certPem: string;
  keyPem: string;
  fingerprint: string;
}

/**
 * `count` leaves signed by `ca` (an RSA CA: node-forge signs, and forge reads RSA
 * keys only), named by `nameOf(i)`, all sharing one RSA key so that no key is
 * generated per leaf. In-process: a thousand take seconds, not minutes of openssl.
 */
export function issueMany(ca: TestCa, count: number, nameOf: (i: number) => string): BulkLeaf[] {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = createPrivateKey(ca.keyPem);
  if (caKey.asymmetricKeyType !== 'rsa')
    throw new Error('issueMany needs an RSA CA (makeCa({ keyType: "rsa" }))');
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const leafPublic = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
  const out: BulkLeaf[] = [];
  const start = new Date(Date.now() - 3_600_000);
  const end = new Date(Date.now() + 90 * 86_400_000);
  for (let i = 0; i < count; i++) {
    const name = nameOf(i);
    const c = forge.pki.createCertificate();
    c.publicKey = leafPublic;
    c.serialNumber = (0x100000 + i).toString(16);
    c.validity.notBefore = start;
    c.validity.notAfter = end;
    c.setSubject([{ name: 'commonName', value: name }]);
    c.setIssuer(caCert.subject.attributes);
    c.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: name }] },
    ]);
    // forge assembles the certificate; node:crypto signs it (forge's own RSA is ~50× slower).
    const oid = forge.pki.oids['sha256WithRSAEncryption'] as string;
    c.signatureOid = oid;
    c.siginfo.algorithmOid = oid;
    // getTBSCertificate exists in node-forge but not in its type definitions.
    const pki = forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 };
    c.tbsCertificate = pki.getTBSCertificate(c);
    const tbs = Buffer.from(forge.asn1.toDer(c.tbsCertificate).getBytes(), 'binary');
    c.signature = sign('sha256', tbs, caKey).toString('binary');
    const certPem = forge.pki.certificateToPem(c);
    out.push({ name, certPem, keyPem, fingerprint: derSha256(certPem) });
  }
  return out;
}

/** A TCP port free on 127.0.0.1 right now (for a proxy that must come back on the same one). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Writes a file the way careful tools do: a temporary name, then a rename. */
export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}
