// Reading pairs from real files made with openssl: each layout's files become the
// leaf, chain and key the proxy gets; unfinished files are "not yet", finished wrong
// ones are "invalid", and a lone PEM without a key is not a pair.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { PairFiles } from '../../connectors/pki/layouts.js';
import { MAX_FILE_BYTES, readPair } from '../../connectors/pki/reader.js';
import { issueCert, makeCa, makeIntermediate } from '../helpers/certs.js';

const root = mkdtempSync(join(tmpdir(), 'pki-reader-'));
const ca = makeCa();
const inter = makeIntermediate(ca);
const leaf = issueCert(inter, ['r.example.test']);

const flat = (name: string): PairFiles => ({
  id: `${name}.crt`,
  layout: 'flat',
  certificate: `${name}.crt`,
  key: `${name}.key`,
  label: name,
});
const combined = (name: string): PairFiles => ({
  id: `${name}.pem`,
  layout: 'combined',
  certificate: `${name}.pem`,
  key: `${name}.pem`,
  label: name,
});

describe('pki reader', () => {
  it('fullchain + key: leaf, chain and key separated; facts from the leaf', async () => {
    writeFileSync(join(root, 'a.crt'), leaf.fullchainPem);
    writeFileSync(join(root, 'a.key'), leaf.keyPem);
    const r = await readPair(root, flat('a'));
    assert.equal(r.kind, 'ok');
    if (r.kind !== 'ok') return;
    assert.equal(r.cert.facts.fingerprint, leaf.fingerprint);
    assert.deepEqual(r.cert.facts.names, ['r.example.test']);
    assert.equal(r.cert.facts.chain_length, 1);
    assert.equal(r.cert.certificate.trim(), leaf.certPem.trim());
    assert.equal(r.cert.chain.trim(), inter.certPem.trim());
  });

  it('certbot cert.pem + chain.pem, and a combined file with the key first, give the same material', async () => {
    mkdirSync(join(root, 'cb'));
    writeFileSync(join(root, 'cb', 'cert.pem'), leaf.certPem);
    writeFileSync(join(root, 'cb', 'chain.pem'), leaf.chainPem);
    writeFileSync(join(root, 'cb', 'privkey.pem'), leaf.keyPem);
    const certbot = await readPair(root, {
      id: 'cb/cert.pem',
      layout: 'certbot',
      certificate: 'cb/cert.pem',
      chain: 'cb/chain.pem',
      key: 'cb/privkey.pem',
      label: 'cb',
    });
    writeFileSync(join(root, 'k.pem'), `${leaf.keyPem}${leaf.certPem}${leaf.chainPem}`);
    const keyFirst = await readPair(root, combined('k'));
    assert.equal(certbot.kind, 'ok');
    assert.equal(keyFirst.kind, 'ok');
    if (certbot.kind === 'ok' && keyFirst.kind === 'ok') {
      assert.equal(certbot.cert.materialHash, keyFirst.cert.materialHash);
    }
  });

  it('unfinished: empty, cut short, missing', async () => {
    writeFileSync(join(root, 'e.crt'), '');
    writeFileSync(join(root, 'e.key'), leaf.keyPem);
    assert.equal((await readPair(root, flat('e'))).kind, 'incomplete');
    writeFileSync(join(root, 'h.crt'), leaf.fullchainPem.slice(0, leaf.fullchainPem.length - 40));
    writeFileSync(join(root, 'h.key'), leaf.keyPem);
    assert.equal((await readPair(root, flat('h'))).kind, 'incomplete');
    const missing = await readPair(root, flat('nothing'));
    assert.equal(missing.kind, 'unreadable');
    assert.match(missing.kind === 'unreadable' ? missing.reason : '', /ENOENT/);
  });

  it('finished and wrong: key mismatch, expired, too large; never quoting the key', async () => {
    const other = issueCert(ca, ['other.example.test']);
    writeFileSync(join(root, 'm.crt'), leaf.fullchainPem);
    writeFileSync(join(root, 'm.key'), other.keyPem);
    const mismatch = await readPair(root, flat('m'));
    assert.equal(mismatch.kind, 'invalid');
    assert.match(mismatch.kind === 'invalid' ? mismatch.reason : '', /key: does not match/);
    assert.ok(!JSON.stringify(mismatch).includes('PRIVATE KEY'));

    const old = issueCert(ca, ['old.example.test'], {
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    writeFileSync(join(root, 'x.crt'), old.fullchainPem);
    writeFileSync(join(root, 'x.key'), old.keyPem);
    const expired = await readPair(root, flat('x'));
    assert.equal(expired.kind, 'invalid');
    assert.match(expired.kind === 'invalid' ? expired.reason : '', /expired/);

    writeFileSync(join(root, 'big.crt'), 'x'.repeat(MAX_FILE_BYTES + 1));
    writeFileSync(join(root, 'big.key'), leaf.keyPem);
    assert.equal((await readPair(root, flat('big'))).kind, 'invalid');
  });

  it('a lone PEM without a key is not a pair', async () => {
    writeFileSync(join(root, 'bundle.pem'), ca.certPem + inter.certPem);
    assert.equal((await readPair(root, combined('bundle'))).kind, 'ignored');
  });
});
