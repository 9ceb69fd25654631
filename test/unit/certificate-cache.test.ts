// The inspection cache keeps only public facts: a second inspection of the same
// input (a hit) must give the key PEM taken from that input, exactly as a miss does.
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { describe, it } from 'node:test';
import { inspectCertificate } from '../../src/certificate/inspect.js';
import { issueCert, makeCa } from '../helpers/certs.js';

const leaf = issueCert(makeCa({ keyType: 'ec' }), ['cache.example.test']);

describe('certificate inspection cache', () => {
  it('a hit answers the key block read from the input, like the miss before it', () => {
    const sec1 = createPrivateKey(leaf.keyPem).export({ type: 'sec1', format: 'pem' }).toString();
    const input = {
      certificate: leaf.certPem,
      key: `-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${sec1}`,
    };
    const first = inspectCertificate(input, { dates: false });
    const second = inspectCertificate(input, { dates: false });
    assert.ok(first.ok && second.ok);
    assert.equal(first.cert.keyPem, sec1);
    assert.equal(second.cert.keyPem, sec1);
    assert.deepEqual(second.cert.facts, first.cert.facts);
  });

  it('a hit still judges dates and a bad key is never cached as good', () => {
    const input = { certificate: leaf.certPem, key: leaf.keyPem };
    assert.ok(inspectCertificate(input).ok);
    assert.ok(inspectCertificate(input, { now: Date.parse('2999-01-01') }).ok === false);
    const other = issueCert(makeCa(), ['other.example.test']);
    const wrong = { certificate: leaf.certPem, key: other.keyPem };
    assert.equal(inspectCertificate(wrong).ok, false);
    assert.equal(inspectCertificate(wrong).ok, false);
  });
});
