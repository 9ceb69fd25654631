// Real certificates made at test time with the openssl CLI: root and intermediate
// CAs, leaves with RSA or P-256 keys, wildcards, CN-only, expired and not-yet-valid
// ones (`openssl ca` takes explicit start and end dates; OpenSSL 3.0's `x509 -req`
// does not). Temporary directories are removed when the process exits.

import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Ed25519 is for leaves; OpenSSL 3.0's `ca` signs with a digest, which Ed25519 CAs refuse. */
export type KeyType = 'rsa' | 'ec' | 'ed25519';

export interface TestCa {
  certPem: string;
  keyPem: string;
  certPath: string;
  dir: string;
  /** Intermediates between this CA and the root, this CA first; '' for a root. */
  chainPem: string;
}

export interface TestCert {
  certPem: string;
  keyPem: string;
  /** The intermediates (leaf-issuer first); '' when a root issued the leaf. */
  chainPem: string;
  fullchainPem: string;
  certPath: string;
  keyPath: string;
  fullchainPath: string;
  /** Uppercase hex, as openssl prints it. */
  serial: string;
  /** SHA-256 of the DER, lowercase hex, as computed by `openssl x509 -fingerprint`. */
  fingerprint: string;
}

export interface IssueOptions {
  keyType?: KeyType;
  /** Validity from now; ignored when notBefore/notAfter are given. Default 365. */
  days?: number;
  /** A Date, or openssl's YYMMDDHHMMSSZ / YYYYMMDDHHMMSSZ. */
  notBefore?: Date | string;
  notAfter?: Date | string;
  /** Subject CN; default the first name. */
  cn?: string;
  /** Leave out the subjectAltName extension (a CN-only certificate). */
  noSan?: boolean;
  /** A client certificate (extendedKeyUsage clientAuth), for mTLS. */
  clientAuth?: boolean;
}

const dirs: string[] = [];
process.on('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

let counter = 0;

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function genKey(path: string, keyType: KeyType, cwd: string): void {
  const algo =
    keyType === 'rsa'
      ? ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']
      : keyType === 'ed25519'
        ? ['-algorithm', 'ED25519']
        : ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  openssl(['genpkey', ...algo, '-out', path], cwd);
}

/** A minimal `openssl ca` setup: its own database, random serials, no DN policy beyond the CN. */
function caConfig(dir: string): string {
  writeFileSync(join(dir, 'index.txt'), '');
  const path = join(dir, 'ca.cnf');
  writeFileSync(
    path,
    `[ca]
default_ca = test_ca
[test_ca]
dir = ${dir}
database = $dir/index.txt
new_certs_dir = $dir
certificate = $dir/ca.crt
private_key = $dir/ca.key
rand_serial = yes
default_md = sha256
default_days = 365
policy = any_cn
unique_subject = no
preserve = yes
email_in_dn = no
copy_extensions = none
[any_cn]
commonName = optional
[req]
distinguished_name = dn
prompt = no
[dn]
[root_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[intermediate_ext]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`,
  );
  return path;
}

function newCaDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kakehi-ca-'));
  dirs.push(dir);
  return dir;
}

function loadCa(dir: string, chainPem: string): TestCa {
  const certPath = join(dir, 'ca.crt');
  return {
    certPem: readFileSync(certPath, 'utf8'),
    keyPem: readFileSync(join(dir, 'ca.key'), 'utf8'),
    certPath,
    dir,
    chainPem,
  };
}

/** A root CA valid 3650 days. EC by default: key generation is near-instant. */
export function makeCa(opts: { name?: string; keyType?: KeyType } = {}): TestCa {
  const dir = newCaDir();
  const config = caConfig(dir);
  genKey('ca.key', opts.keyType ?? 'ec', dir);
  openssl(
    [
      'req',
      '-config',
      config,
      '-new',
      '-x509',
      '-key',
      'ca.key',
      '-sha256',
      '-days',
      '3650',
      '-subj',
      `/CN=${opts.name ?? 'Kakehi Test Root CA'}`,
      '-extensions',
      'root_ext',
      '-out',
      'ca.crt',
    ],
    dir,
  );
  return loadCa(dir, '');
}

/** An intermediate CA signed by `ca`, valid 3650 days. */
export function makeIntermediate(ca: TestCa, opts: { name?: string; keyType?: KeyType } = {}): TestCa {
  const dir = newCaDir();
  caConfig(dir);
  genKey('ca.key', opts.keyType ?? 'ec', dir);
  const csr = join(dir, 'ca.csr');
  openssl(
    [
      'req',
      '-config',
      join(ca.dir, 'ca.cnf'),
      '-new',
      '-key',
      'ca.key',
      '-subj',
      `/CN=${opts.name ?? `Kakehi Test Intermediate ${++counter}`}`,
      '-out',
      csr,
    ],
    dir,
  );
  openssl(
    [
      'ca',
      '-batch',
      '-notext',
      '-config',
      join(ca.dir, 'ca.cnf'),
      '-extensions',
      'intermediate_ext',
      '-days',
      '3650',
      '-in',
      csr,
      '-out',
      join(dir, 'ca.crt'),
    ],
    ca.dir,
  );
  const self = readFileSync(join(dir, 'ca.crt'), 'utf8');
  return loadCa(dir, self + ca.chainPem);
}

/** A server (or with clientAuth, client) certificate for `names` signed by `issuer`. EC P-256 by default. */
export function issueCert(issuer: TestCa, names: string[], opts: IssueOptions = {}): TestCert {
  const dir = issuer.dir;
  const base = `leaf-${process.pid}-${++counter}`;
  const keyPath = join(dir, `${base}.key`);
  const certPath = join(dir, `${base}.crt`);
  const fullchainPath = join(dir, `${base}.fullchain.crt`);
  const extPath = join(dir, `${base}.ext`);
  const csr = join(dir, `${base}.csr`);
  genKey(keyPath, opts.keyType ?? 'ec', dir);

  const cn = opts.cn ?? names[0] ?? 'kakehi test';
  const ext = [
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage = ${opts.clientAuth === true ? 'clientAuth' : 'serverAuth'}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
  ];
  if (opts.noSan !== true && names.length > 0) {
    ext.push(
      `subjectAltName = ${names.map((n) => (/^[0-9.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}`,
    );
  }
  writeFileSync(extPath, `[leaf]\n${ext.join('\n')}\n`);
  openssl(
    ['req', '-config', join(dir, 'ca.cnf'), '-new', '-key', keyPath, '-subj', `/CN=${cn}`, '-out', csr],
    dir,
  );

  const validity: string[] = [];
  if (opts.notBefore !== undefined || opts.notAfter !== undefined) {
    const start = opts.notBefore ?? new Date(Date.now() - 3_600_000);
    const end = opts.notAfter ?? new Date(Date.now() + 365 * 86_400_000);
    validity.push('-startdate', opensslTime(start), '-enddate', opensslTime(end));
  } else {
    validity.push('-days', String(opts.days ?? 365));
  }
  openssl(
    [
      'ca',
      '-batch',
      '-notext',
      '-config',
      join(dir, 'ca.cnf'),
      '-extfile',
      extPath,
      '-extensions',
      'leaf',
      ...validity,
      '-in',
      csr,
      '-out',
      certPath,
    ],
    dir,
  );

  const certPem = readFileSync(certPath, 'utf8');
  const chainPem = issuer.chainPem;
  const fullchainPem = certPem + chainPem;
  writeFileSync(fullchainPath, fullchainPem);
  const printed = openssl(['x509', '-in', certPath, '-noout', '-serial', '-fingerprint', '-sha256'], dir);
  const serial = /serial=([0-9A-F]+)/i.exec(printed)?.[1]?.toUpperCase() ?? '';
  const fingerprint = (/Fingerprint=([0-9A-F:]+)/i.exec(printed)?.[1] ?? '')
    .replaceAll(':', '')
    .toLowerCase();
  return {
    certPem,
    keyPem: readFileSync(keyPath, 'utf8'),
    chainPem,
    fullchainPem,
    certPath,
    keyPath,
    fullchainPath,
    serial,
    fingerprint,
  };
}

/** openssl's GeneralizedTime form, accepted by `openssl ca -startdate/-enddate`. */
function opensslTime(t: Date | string): string {
  if (typeof t === 'string') return t;
  return `${t.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

/** SHA-256 of a PEM certificate's DER, computed independently of src/tls. */
export function derSha256(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}
