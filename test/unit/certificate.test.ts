// Certificate inspection against real certificates minted by the openssl CLI: key
// types and formats, names, chains, dates, broken input, and that no issue ever
// quotes the private key.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  type CertificateInput,
  fingerprintOf,
  inspectCertificate,
  normalizeFingerprint,
  type ParsedCertificate,
} from '../../src/certificate/inspect.js';
import { nameMatches } from '../../src/certificate/names.js';
import { splitPem } from '../../src/certificate/pem.js';
import type { FieldIssue } from '../../src/errors.js';
import { selfSignedCertificate } from '../../src/tls/self-signed.js';
import { derSha256, issueCert, makeCa, makeIntermediate, type TestCert } from '../helpers/certs.js';

const DAY = 86_400_000;
/**
 * Found by `npm run fuzz` (seed 1796302236): a test certificate (rsa.fuzz.test, from
 * a throwaway test CA) whose SAN value's SEQUENCE tag (0x30) became 0xf8.
 */
const CORRUPT_SAN_PEM = [
  '-----BEGIN CERTIFICATE-----',
  'MIIClDCCAjqgAwIBAgIUYeyfPVIeNzU51RkASC+xvTbH2GowCgYIKoZIzj0EAwIw',
  'HjEcMBoGA1UEAwwTS2FrZWhpIFRlc3QgUm9vdCBDQTAeFw0yNjEyMDMxMjUwMzda',
  'Fw0yNzEyMDMxMjUwMzdaMBgxFjAUBgNVBAMMDXJzYS5mdXp6LnRlc3QwggEiMA0G',
  'CSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQC2TE3RfN4uU32QTjOyYnbFIxN5rgqE',
  'nijBpjGZ/tRARxtNZWYm9vbS3quQ9l/bH+jgMOxF+u1TrhlX7y0IDNITF5jxsTif',
  'HbacfVnzAJYWe2STkdXePaec45wCvgRBi2lBI6N9rOsrxrUkDlNctLABU+ysIvmM',
  'NRiPfMaXAPZgfm2KunQlrEubBUV/9v98eT+oaSlIUTMGEtNTY9ngmOdylC+6NmA+',
  '6jjvZU6qK86uPaQTsM03fv6E7YyDH9qqktA+EFVyHZ2WpVHCz3UDeNRPrV9kjvig',
  'tLUJeftVbePsQCPD4HZBVZm9jDEpbtNrn/+itZmzma6EVnjTnd8WFHWfAgMBAAGj',
  'gZAwgY0wDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCBaAwEwYDVR0lBAwwCgYI',
  'KwYBBQUHAwEwHQYDVR0OBBYEFCNflOfFd3oHxYmFmfEzt+wIFJMhMB8GA1UdIwQY',
  'MBaAFFylwqRB39BLz38S6aYNEgtaOhgIMBgGA1UdEQQR+A+CDXJzYS5mdXp6LnRl',
  'c3QwCgYIKoZIzj0EAwIDSAAwRQIgXlaQylQY3kWFVGMv2DfY665zM3NGpuOXY6Zq',
  'cVE9d78CIQDb+S5LAxiVA580Z7nWMl+cduk0y63vPcPKynZW2wJJZQ==',
  '-----END CERTIFICATE-----',
].join('\n');
const root = makeCa();
const intermediate = makeIntermediate(root);
const inner = makeIntermediate(intermediate);
const ecLeaf = issueCert(root, ['ec.example.test']);
const rsaLeaf = issueCert(root, ['rsa.example.test'], { keyType: 'rsa' });

/** Every line of the key's body; none may show up in an issue. */
function assertNoKeyLeak(issues: FieldIssue[], ...keyPems: string[]): void {
  const lines = keyPems.flatMap((k) => k.split('\n').filter((l) => l !== '' && !l.startsWith('-----')));
  for (const issue of issues) {
    for (const line of lines) {
      assert.ok(
        !issue.reason.includes(line) && !issue.path.includes(line),
        `issue quotes key material: ${issue.reason}`,
      );
    }
  }
}

function ok(input: CertificateInput, now?: number): ParsedCertificate {
  const r = inspectCertificate(input, { now });
  if (!r.ok) assert.fail(`expected ok, got ${JSON.stringify(r.issues)}`);
  return r.cert;
}

function bad(input: CertificateInput, now?: number): FieldIssue[] {
  const r = inspectCertificate(input, { now });
  assert.equal(r.ok, false, 'expected issues');
  const issues = r.ok ? [] : r.issues;
  assert.ok(issues.length > 0);
  assertNoKeyLeak(issues, input.key);
  return issues;
}

function hasIssue(issues: FieldIssue[], path: string | RegExp, reason: RegExp): void {
  const found = issues.some(
    (i) => (typeof path === 'string' ? i.path === path : path.test(i.path)) && reason.test(i.reason),
  );
  assert.ok(found, `no issue ${String(path)} ${reason} in ${JSON.stringify(issues)}`);
}

function input(c: TestCert, extra: Partial<CertificateInput> = {}): CertificateInput {
  return { certificate: c.certPem, key: c.keyPem, ...extra };
}

describe('inspectCertificate: key types and formats', () => {
  it('reads an ECDSA P-256 leaf', () => {
    const { facts, leafPem, chainPems, keyPem } = ok(input(ecLeaf));
    assert.equal(facts.key_type, 'ec');
    assert.equal(facts.key_bits, 256);
    assert.deepEqual(facts.names, ['ec.example.test']);
    assert.equal(facts.fingerprint, ecLeaf.fingerprint);
    assert.equal(facts.serial, ecLeaf.serial);
    assert.equal(facts.subject, 'CN=ec.example.test');
    assert.equal(facts.issuer, 'CN=Kakehi Test Root CA');
    assert.equal(facts.chain_length, 0);
    assert.equal(facts.self_signed, false);
    assert.deepEqual(chainPems, []);
    assert.equal(leafPem, ecLeaf.certPem);
    assert.equal(keyPem, ecLeaf.keyPem);
    const x = new X509Certificate(ecLeaf.certPem);
    assert.equal(facts.not_before, new Date(x.validFrom).toISOString());
    assert.equal(facts.not_after, new Date(x.validTo).toISOString());
    const span = Date.parse(facts.not_after) - Date.parse(facts.not_before);
    assert.ok(Math.abs(span - 365 * DAY) < 60_000, 'default validity is 365 days');
  });

  it('reads an RSA 2048 leaf', () => {
    const { facts } = ok(input(rsaLeaf));
    assert.equal(facts.key_type, 'rsa');
    assert.equal(facts.key_bits, 2048);
    assert.deepEqual(facts.names, ['rsa.example.test']);
    assert.equal(facts.fingerprint, rsaLeaf.fingerprint);
  });

  it('accepts PKCS#1 RSA and SEC1 EC keys as well as PKCS#8', () => {
    const pkcs1 = createPrivateKey(rsaLeaf.keyPem).export({ type: 'pkcs1', format: 'pem' }).toString();
    assert.match(pkcs1, /BEGIN RSA PRIVATE KEY/);
    assert.equal(ok(input(rsaLeaf, { key: pkcs1 })).facts.key_type, 'rsa');
    const sec1 = createPrivateKey(ecLeaf.keyPem).export({ type: 'sec1', format: 'pem' }).toString();
    assert.match(sec1, /BEGIN EC PRIVATE KEY/);
    assert.equal(ok(input(ecLeaf, { key: sec1 })).keyPem, sec1);
  });

  it('ignores an EC PARAMETERS block next to the key (openssl ecparam -genkey output)', () => {
    const params = execFileSync('openssl', ['ecparam', '-name', 'prime256v1'], { encoding: 'utf8' });
    const sec1 = createPrivateKey(ecLeaf.keyPem).export({ type: 'sec1', format: 'pem' }).toString();
    assert.equal(ok(input(ecLeaf, { key: params + sec1 })).keyPem, sec1);
  });

  it('refuses encrypted keys, PKCS#8 and legacy PEM alike', () => {
    const k = createPrivateKey(rsaLeaf.keyPem);
    const pkcs8 = k
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' })
      .toString();
    const legacy = k
      .export({ type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' })
      .toString();
    assert.match(legacy, /Proc-Type: 4,ENCRYPTED/);
    for (const key of [pkcs8, legacy]) {
      hasIssue(bad(input(rsaLeaf, { key })), 'key', /encrypted.*not supported/);
    }
  });

  it('refuses a key that does not match the certificate, naming key', () => {
    const issues = bad(input(ecLeaf, { key: rsaLeaf.keyPem }));
    hasIssue(issues, 'key', /does not match the certificate's public key/);
    const other = issueCert(root, ['other.example.test']);
    hasIssue(bad(input(ecLeaf, { key: other.keyPem })), 'key', /does not match/);
  });

  it('refuses a certificate whose subjectAltName cannot be decoded, never falling back to its CN', () => {
    // Node gives subjectAltName as null for it; inspectCertificate threw a TypeError.
    assert.equal(new X509Certificate(CORRUPT_SAN_PEM).subjectAltName as string | null, null);
    const issues = bad({ certificate: CORRUPT_SAN_PEM, key: rsaLeaf.keyPem });
    hasIssue(issues, 'certificate', /subjectAltName extension that cannot be decoded/);
  });

  it('wants exactly one private key block', () => {
    hasIssue(bad(input(ecLeaf, { key: '' })), 'key', /no complete PEM private key block/);
    hasIssue(bad(input(ecLeaf, { key: ecLeaf.certPem })), 'key', /no complete PEM private key block/);
    hasIssue(bad(input(ecLeaf, { key: ecLeaf.keyPem + rsaLeaf.keyPem })), 'key', /2 private key blocks/);
  });

  it('reads an Ed25519 leaf', () => {
    const ed = issueCert(root, ['ed.example.test'], { keyType: 'ed25519' });
    const { facts } = ok(input(ed));
    assert.equal(facts.key_type, 'ed25519');
    assert.equal(facts.key_bits, undefined);
  });

  it('refuses fields that are not text', () => {
    const wrong = { certificate: 42, chain: ['x'], key: null } as unknown as CertificateInput;
    const r = inspectCertificate(wrong);
    assert.equal(r.ok, false);
    for (const path of ['certificate', 'chain', 'key'])
      hasIssue(r.ok ? [] : r.issues, path, /must be PEM text/);
  });

  it('reports an unreadable key block without quoting it', () => {
    const body = ecLeaf.keyPem.split('\n');
    // Corrupt the base64 body but keep the PEM frame.
    const broken = [body[0], 'AAAA', body[1]?.slice(8), ...body.slice(2)].join('\n');
    const issues = bad(input(ecLeaf, { key: broken }));
    hasIssue(issues, 'key', /not a readable PRIVATE KEY block/);
  });
});

describe('inspectCertificate: names', () => {
  it('keeps wildcard SAN names, lowercased and deduplicated in order', () => {
    const c = issueCert(root, ['*.Example.test', 'example.test', '*.example.TEST', 'www.example.test']);
    assert.deepEqual(ok(input(c)).facts.names, ['*.example.test', 'example.test', 'www.example.test']);
  });

  it('uses SAN dNSNames, not the CN, when both exist', () => {
    const c = issueCert(root, ['san.example.test'], { cn: 'cn.example.test' });
    assert.deepEqual(ok(input(c)).facts.names, ['san.example.test']);
  });

  it('ignores IP SANs when looking for DNS names', () => {
    const c = issueCert(root, ['127.0.0.1', 'ip.example.test'], { cn: 'cn.example.test' });
    assert.deepEqual(ok(input(c)).facts.names, ['ip.example.test']);
  });

  it('falls back to the subject CN when there is no SAN', () => {
    const c = issueCert(root, [], { cn: 'CN-Only.example.test', noSan: true });
    assert.deepEqual(ok(input(c)).facts.names, ['cn-only.example.test']);
  });

  it('refuses a certificate with no usable name unless names are given', () => {
    const c = issueCert(root, [], { cn: 'My Internal Service', noSan: true });
    hasIssue(bad(input(c)), 'certificate', /no DNS name.*give names explicitly/);
    assert.deepEqual(ok(input(c, { names: ['svc.example.test'] })).facts.names, ['svc.example.test']);
  });

  it('lets explicit names override the certificate, lowercased and deduplicated', () => {
    const names = ['Other.example.test', 'other.example.test', '*.w.example.test'];
    assert.deepEqual(ok(input(ecLeaf, { names })).facts.names, ['other.example.test', '*.w.example.test']);
    assert.deepEqual(
      ok(input(ecLeaf, { names: [] })).facts.names,
      ['ec.example.test'],
      'empty list = absent',
    );
  });

  it('refuses explicit names that are not DNS names or one-label wildcards', () => {
    const issues = bad(
      input(ecLeaf, { names: ['ok.example.test', 'bad name', '*.com', 'a.*.example.test', ''] }),
    );
    for (const i of [1, 2, 3, 4]) hasIssue(issues, `names[${i}]`, /not a DNS name/);
    assert.ok(!issues.some((i) => i.path === 'names[0]'));
  });
});

describe('inspectCertificate: chains', () => {
  const leaf = issueCert(inner, ['deep.example.test']);
  const innerPem = inner.certPem;
  const midPem = intermediate.certPem;

  it('knows its test helper: chainPem is the intermediates, leaf-issuer first', () => {
    assert.equal(leaf.chainPem, innerPem + midPem);
    assert.equal(leaf.fullchainPem, leaf.certPem + innerPem + midPem);
  });

  it('accepts a fullchain in certificate', () => {
    const cert = ok({ certificate: leaf.fullchainPem, key: leaf.keyPem });
    assert.equal(cert.facts.chain_length, 2);
    assert.deepEqual(cert.chainPems, [innerPem, midPem]);
    assert.equal(cert.leafPem, leaf.certPem);
    assert.equal(cert.facts.fingerprint, leaf.fingerprint);
  });

  it('accepts the chain in chain, and a split between both fields', () => {
    assert.equal(ok(input(leaf, { chain: leaf.chainPem })).facts.chain_length, 2);
    const split = ok({ certificate: leaf.certPem + innerPem, chain: midPem, key: leaf.keyPem });
    assert.deepEqual(split.chainPems, [innerPem, midPem]);
    assert.equal(ok(input(leaf, { chain: '' })).facts.chain_length, 0);
  });

  it('accepts the root at the end of the chain', () => {
    assert.equal(ok(input(leaf, { chain: leaf.chainPem + root.certPem })).facts.chain_length, 3);
  });

  it('refuses a chain out of order, naming the misplaced certificate', () => {
    hasIssue(
      bad(input(leaf, { chain: midPem + innerPem })),
      'chain[0]',
      /does not issue the certificate before it/,
    );
    hasIssue(
      bad({ certificate: leaf.certPem + midPem + innerPem, key: leaf.keyPem }),
      'certificate[1]',
      /chain out of order/,
    );
  });

  it('says so when the chain is given twice', () => {
    const issues = bad({ certificate: leaf.fullchainPem, chain: leaf.chainPem, key: leaf.keyPem });
    hasIssue(issues, 'chain[0]', /repeats certificate\[1\].*both in certificate and in chain/);
  });

  it('refuses a chain certificate from another hierarchy', () => {
    const stranger = makeCa({ name: 'Stranger CA' });
    hasIssue(bad(input(ecLeaf, { chain: stranger.certPem })), 'chain[0]', /does not issue/);
  });

  it('refuses a chain that is not PEM certificates', () => {
    hasIssue(bad(input(leaf, { chain: 'not a pem' })), 'chain', /no complete PEM CERTIFICATE block/);
    hasIssue(bad(input(leaf, { chain: leaf.keyPem })), 'chain', /private key/);
  });
});

describe('inspectCertificate: dates', () => {
  it('refuses an expired certificate unless allow_expired', () => {
    const c = issueCert(root, ['old.example.test'], {
      notBefore: new Date(Date.now() - 30 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const notAfter = new Date(new X509Certificate(c.certPem).validTo).toISOString();
    hasIssue(bad(input(c)), 'certificate', new RegExp(`expired on ${notAfter}.*allow_expired`));
    const cert = ok(input(c, { allow_expired: true }));
    assert.equal(cert.facts.not_after, notAfter);
  });

  it('refuses a certificate that is not valid yet, even with allow_expired', () => {
    const c = issueCert(root, ['future.example.test'], {
      notBefore: '350101000000Z',
      notAfter: '360101000000Z',
    });
    const issues = bad(input(c, { allow_expired: true }));
    hasIssue(issues, 'certificate', /not valid before 2035-01-01T00:00:00\.000Z/);
  });

  it('judges dates against the given now', () => {
    hasIssue(bad(input(ecLeaf), Date.now() + 400 * DAY), 'certificate', /expired on/);
    hasIssue(bad(input(ecLeaf), Date.now() - 400 * DAY), 'certificate', /not valid before/);
  });
});

describe('inspectCertificate: broken input', () => {
  it('refuses garbage', () => {
    hasIssue(
      bad(input(ecLeaf, { certificate: 'hello, world' })),
      'certificate',
      /no complete PEM CERTIFICATE block/,
    );
    hasIssue(bad(input(ecLeaf, { certificate: '' })), 'certificate', /no complete PEM CERTIFICATE block/);
    const junk = '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n';
    hasIssue(bad(input(ecLeaf, { certificate: junk })), 'certificate', /not a readable X\.509 certificate/);
  });

  it('refuses a truncated file (the first or the second half)', () => {
    const full = issueCert(inner, ['t.example.test']).fullchainPem;
    const half = full.length >> 1;
    hasIssue(bad(input(ecLeaf, { certificate: full.slice(0, half) })), 'certificate', /incomplete PEM block/);
    hasIssue(bad(input(ecLeaf, { certificate: full.slice(half) })), 'certificate', /incomplete PEM block/);
    const key = ecLeaf.keyPem.slice(0, ecLeaf.keyPem.length >> 1);
    hasIssue(bad(input(ecLeaf, { key })), 'key', /incomplete PEM block/);
  });

  it('refuses a private key in the certificate field without quoting it', () => {
    const issues = bad(input(ecLeaf, { certificate: ecLeaf.certPem + ecLeaf.keyPem }));
    hasIssue(issues, 'certificate', /private key block.*goes in `key`/);
    assertNoKeyLeak(issues, ecLeaf.keyPem);
  });

  it('never quotes the key in any issue, across many failures at once', () => {
    const issues = bad({
      certificate: ecLeaf.keyPem,
      chain: rsaLeaf.keyPem,
      key: `${rsaLeaf.keyPem}${ecLeaf.keyPem}`,
      // A whole key, and one line of it, pasted into the wrong field.
      names: [ecLeaf.keyPem, ecLeaf.keyPem.split('\n')[1] as string],
    });
    assert.ok(issues.length >= 5);
    hasIssue(issues, 'names[1]', /a 64-character value is not a DNS name/);
    assertNoKeyLeak(issues, ecLeaf.keyPem, rsaLeaf.keyPem);
  });
});

describe('fingerprints', () => {
  it('fingerprintOf equals openssl x509 -fingerprint -sha256, normalized', () => {
    const printed = execFileSync(
      'openssl',
      ['x509', '-in', rsaLeaf.certPath, '-noout', '-fingerprint', '-sha256'],
      {
        encoding: 'utf8',
      },
    );
    const want = normalizeFingerprint(printed.trim());
    assert.equal(want, rsaLeaf.fingerprint);
    assert.equal(fingerprintOf(rsaLeaf.certPem), want);
    assert.equal(fingerprintOf(issueCert(inner, ['f.example.test']).fullchainPem)?.length, 64);
    assert.equal(fingerprintOf(ecLeaf.fullchainPem), derSha256(ecLeaf.certPem));
  });

  it('fingerprintOf is undefined for anything unparsable', () => {
    assert.equal(fingerprintOf(''), undefined);
    assert.equal(fingerprintOf('garbage'), undefined);
    assert.equal(fingerprintOf('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), undefined);
    assert.equal(fingerprintOf(ecLeaf.keyPem), undefined);
  });

  it('normalizeFingerprint accepts colon pairs or hex in any case', () => {
    const hex = ecLeaf.fingerprint;
    const colons = hex.toUpperCase().match(/../g)?.join(':') ?? '';
    const rows: [string, string | undefined][] = [
      [hex, hex],
      [hex.toUpperCase(), hex],
      [colons, hex],
      [colons.toLowerCase(), hex],
      [`sha256 Fingerprint=${colons}`, hex],
      [`  ${hex}\n`, hex],
      [hex.slice(2), undefined],
      [`${hex}00`, undefined],
      [`${hex.slice(1)}g`, undefined],
      [colons.replace(':', '::'), undefined],
      [`${colons}:`, undefined],
      ['', undefined],
    ];
    for (const [given, want] of rows) assert.equal(normalizeFingerprint(given), want, JSON.stringify(given));
  });
});

describe('nameMatches', () => {
  it('matches exact names case-insensitively and one-label wildcards only', () => {
    const rows: [string, string, boolean][] = [
      ['example.com', 'example.com', true],
      ['Example.COM', 'example.com', true],
      ['example.com', 'EXAMPLE.com', true],
      ['example.com', 'www.example.com', false],
      ['*.example.com', 'a.example.com', true],
      ['*.example.com', 'A.Example.Com', true],
      ['*.example.com', 'example.com', false],
      ['*.example.com', 'a.b.example.com', false],
      ['*.example.com', '.example.com', false],
      ['*.example.com', 'aexample.com', false],
      ['*.example.com', 'a.example.org', false],
      ['a.example.com', '*.example.com', false],
    ];
    for (const [pattern, host, want] of rows)
      assert.equal(nameMatches(pattern, host), want, `${pattern} ~ ${host}`);
  });
});

describe('splitPem', () => {
  const a = '-----BEGIN CERTIFICATE-----\nQUFB\n-----END CERTIFICATE-----';
  const k = '-----BEGIN PRIVATE KEY-----\nQkJC\n-----END PRIVATE KEY-----';

  it('returns complete blocks in order and ignores text around them', () => {
    const text = `Bag Attributes\n    localKeyID: 01 02\nsubject=/CN=x\n${a}\n\n# comment\n${k}\r\n`;
    const r = splitPem(text);
    assert.equal(r.incomplete, false);
    assert.deepEqual(r.blocks, [
      { type: 'CERTIFICATE', pem: `${a}\n` },
      { type: 'PRIVATE KEY', pem: `${k}\n` },
    ]);
  });

  it('normalizes CRLF line endings inside blocks', () => {
    assert.equal(splitPem(a.replaceAll('\n', '\r\n')).blocks[0]?.pem, `${a}\n`);
  });

  it('flags a BEGIN without END, an END without BEGIN, mismatched labels and cut markers', () => {
    const cases = [
      `${a}\n-----BEGIN CERTIFICATE-----\nQUFB\n`,
      `QUFB\n-----END CERTIFICATE-----\n${a}`,
      '-----BEGIN CERTIFICATE-----\nQUFB\n-----END PRIVATE KEY-----\n',
      `-----BEGIN CERTIFICATE-----\nQUFB\n${a}`,
      `${a}\n-----BEGIN CERT`,
      `${a}\n-----END CERTIFICATE`,
    ];
    for (const text of cases) assert.equal(splitPem(text).incomplete, true, JSON.stringify(text));
    assert.equal(splitPem(cases[0] as string).blocks.length, 1, 'the complete block is still returned');
  });

  it('finds nothing in an empty or PEM-free text, without calling it incomplete', () => {
    assert.deepEqual(splitPem(''), { blocks: [], incomplete: false });
    assert.deepEqual(splitPem('just words\n'), { blocks: [], incomplete: false });
  });
});

describe('selfSignedCertificate', () => {
  const names = ['localhost', 'Kakehi.example.test', '*.kakehi.example.test', '127.0.0.1'];
  const made = selfSignedCertificate(names, 30);

  it('passes inspection with the DNS names and an RSA 2048 key', () => {
    const { facts } = ok({ certificate: made.certificate, key: made.key });
    assert.deepEqual(facts.names, ['localhost', 'kakehi.example.test', '*.kakehi.example.test']);
    assert.equal(facts.self_signed, true);
    assert.equal(facts.key_type, 'rsa');
    assert.equal(facts.key_bits, 2048);
    assert.equal(facts.subject, 'CN=localhost');
    assert.equal(facts.issuer, facts.subject);
    assert.match(facts.serial, /^[0-9A-F]+$/);
    const span = Date.parse(facts.not_after) - Date.parse(facts.not_before);
    assert.ok(Math.abs(span - (30 * DAY + 3_600_000)) < 5_000, 'valid from an hour ago for 30 days');
    assert.ok(Date.parse(facts.not_before) < Date.now());
  });

  it('is a server certificate: IP SAN, SHA-256, not a CA, serverAuth', () => {
    const x = new X509Certificate(made.certificate);
    assert.match(x.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.equal(x.ca, false);
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], {
      input: made.certificate,
      encoding: 'utf8',
    });
    assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
    assert.match(text, /Digital Signature, Key Encipherment/);
    assert.match(text, /Version: 3/);
  });

  it('makes a fresh key and serial each time', () => {
    const again = selfSignedCertificate(['localhost']);
    assert.notEqual(again.key, made.key);
    assert.notEqual(fingerprintOf(again.certificate), fingerprintOf(made.certificate));
  });

  it('needs at least one name', () => {
    assert.throws(() => selfSignedCertificate([]), TypeError);
  });
});
