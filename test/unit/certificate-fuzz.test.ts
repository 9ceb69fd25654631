// Fuzzing certificate input (src/certificate): PEM text cut, corrupted and
// mixed, keys swapped, names of any shape. Inspection answers a certificate or
// issues that name the field, never throws, and never quotes the private key.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fingerprintOf, inspectCertificate, normalizeFingerprint } from '../../src/certificate/inspect.js';
import { isCertificateName, nameMatches } from '../../src/certificate/names.js';
import { splitPem } from '../../src/certificate/pem.js';
import { issueCert, makeCa, makeIntermediate } from '../helpers/certs.js';
import { arbEdgeString, FUZZ_TEST, fuzz } from '../helpers/fuzz.js';

const root = makeCa();
const mid = makeIntermediate(root);
const ec = issueCert(mid, ['ec.fuzz.test', '*.w.fuzz.test']);
const rsa = issueCert(root, ['rsa.fuzz.test'], { keyType: 'rsa' });
const PIECES = [ec.certPem, ec.keyPem, ec.chainPem, rsa.certPem, rsa.keyPem, mid.certPem, root.certPem];
const KEY_LINES = [ec.keyPem, rsa.keyPem].flatMap((k) =>
  k.split('\n').filter((l) => l.length > 16 && !l.startsWith('-----')),
);

/** A PEM text from real pieces, then cut, with bytes flipped or inserted. */
const arbPem = fc
  .tuple(
    fc.array(fc.nat(PIECES.length - 1), { minLength: 0, maxLength: 3 }),
    fc.array(
      fc.tuple(
        fc.nat(),
        fc.nat(4),
        fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom('-----', '\n', '=')),
      ),
      {
        maxLength: 3,
      },
    ),
  )
  .map(([which, edits]) => {
    let t = which.map((i) => PIECES[i]!).join('');
    for (const [at, del, ins] of edits) {
      const p = t.length === 0 ? 0 : at % t.length;
      t = t.slice(0, p) + ins + t.slice(p + del);
    }
    return t;
  });
const arbText = fc.oneof({ weight: 4, arbitrary: arbPem }, { weight: 1, arbitrary: arbEdgeString });

describe('certificate fuzz', () => {
  it('the unedited pieces inspect fine (the edits start from valid input)', FUZZ_TEST, () => {
    const r = inspectCertificate({ certificate: ec.certPem, chain: ec.chainPem, key: ec.keyPem });
    assert.ok(r.ok, JSON.stringify(r));
  });

  it(
    'cut, corrupted or mixed PEM inspects to a certificate or issues, never throwing or quoting the key',
    FUZZ_TEST,
    () => {
      fuzz(
        'certificate inspect',
        fc.property(
          arbText,
          arbText,
          arbText,
          fc.option(fc.array(arbEdgeString, { maxLength: 3 }), { nil: undefined }),
          fc.boolean(),
          (certificate, chain, key, names, allowExpired) => {
            const r = inspectCertificate({ certificate, chain, key, names, allow_expired: allowExpired });
            if (r.ok) return;
            assert.ok(r.issues.length > 0);
            const said = JSON.stringify(r.issues);
            for (const l of KEY_LINES) assert.ok(!said.includes(l), 'an issue quotes the private key');
          },
        ),
      );
    },
  );

  it('splitPem, fingerprints and name rules take any text', FUZZ_TEST, () => {
    fuzz(
      'certificate text helpers',
      fc.property(arbText, arbEdgeString, arbEdgeString, (text, a, b) => {
        const { blocks } = splitPem(text);
        for (const blk of blocks)
          assert.match(blk.pem, /^-----BEGIN [A-Z0-9 ]+-----\n[\s\S]*-----END [A-Z0-9 ]+-----\n$/);
        const fp = fingerprintOf(text);
        if (fp !== undefined) assert.equal(normalizeFingerprint(fp), fp);
        const n = normalizeFingerprint(a);
        if (n !== undefined) assert.match(n, /^[0-9a-f]{64}$|^[0-9A-F:]{95}$/);
        assert.equal(typeof isCertificateName(a), 'boolean');
        assert.equal(typeof nameMatches(a, b), 'boolean');
      }),
    );
  });
});
