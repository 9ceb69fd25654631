// Helpers for the PKI connector tests: run `kakehi pki` as a real process, ask a
// real TLS handshake which certificate a listener serves, poll until something
// holds, and make many leaf certificates quickly (node-forge, one shared key) for
// the thousand-certificate test.

import { type ChildProcess, spawn } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import forge from 'node-forge';
import type { TestCa } from './certs.js';
import { derSha256 } from './certs.js';
import { CLI } from './kakehi-process.js';

export interface LogLine {
  [key: string]: unknown;
  msg?: string;
}

export interface PkiProcess {
  proc: ChildProcess;
  /** Port of its /metrics, /healthz, /status server. */
  port: number;
  logs: LogLine[];
  status(): Promise<PkiStatus>;
  metrics(): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
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
  const proc = spawn(process.execPath, [CLI, 'pki', '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KAKEHI_LOG_LEVEL: opts.logLevel ?? process.env.KAKEHI_LOG_LEVEL ?? 'info' },
  });
  const logs: LogLine[] = [];
  const raw: string[] = [];
  let rest = '';
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (chunk: string) => {
    rest += chunk;
    for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      raw.push(line);
      if (raw.length > 5_000) raw.shift();
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line, unparsed: true });
      }
      if (logs.length > 20_000) logs.shift();
    }
  });
  proc.stdout?.resume();
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((res) =>
    proc.on('exit', (code) => {
      exitCode = code;
      res(code);
    }),
  );
  const port = await eventually(
    () => {
      if (exitCode !== undefined) throw new Error(`kakehi pki exited (${exitCode}):\n${raw.join('\n')}`);
      const l = logs.find((x) => x.msg === 'listening');
      if (!l) throw new Error(`kakehi pki did not listen:\n${raw.join('\n')}`);
      return Number(l['port']);
    },
    { timeoutMs: opts.timeoutMs ?? 10_000, what: 'kakehi pki listening', bail: () => exitCode !== undefined },
  );
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, text: await res.text() };
  };
  return {
    proc,
    port,
    logs,
    exited,
    async status() {
      return JSON.parse((await get('/status')).text) as PkiStatus;
    },
    async metrics() {
      return (await get('/metrics')).text;
    },
    stop(signal = 'SIGTERM') {
      if (exitCode === undefined) proc.kill(signal);
      return exited;
    },
  };
}

/**
 * Runs `fn`; if it throws, the error carries the connector's last log lines, so a
 * failure on a CI machine says what the connector saw and did.
 */
export async function withLogs<T>(c: PkiProcess, fn: () => Promise<T>, lines = 60): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const tail = c.logs.slice(-lines).map((l) => JSON.stringify(l));
    const message = `${err instanceof Error ? err.message : String(err)}\n--- last ${tail.length} connector log lines:\n${tail.join('\n')}`;
    throw Object.assign(new Error(message), { cause: err });
  }
}

/** Retries fn until it returns without throwing, or the deadline passes (then throws its last error). */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string; bail?: () => boolean } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let last: unknown;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline || opts.bail?.()) {
      const why = last instanceof Error ? last.message : String(last);
      throw new Error(`timed out waiting for ${opts.what ?? 'a condition'}: ${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
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
