// Fuzzing the config loader (YAML text and parsed objects): whatever the input,
// it returns a config or refuses with KKH_CONFIG_INVALID / KKH_CONFIG_UNREADABLE,
// never another exception. Inputs start from a valid file with a certificate and
// are broken one place at a time, so most runs get deep into validation.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { configFromObject, parseConfigText } from '../../src/config/load-config.js';
import { issueCert, makeCa } from '../helpers/certs.js';
import { arbEdgeString, arbValue, FUZZ_TEST, fuzz, refusedOnlyWith } from '../helpers/fuzz.js';

const CODES = ['KKH_CONFIG_INVALID', 'KKH_CONFIG_UNREADABLE'];
const dir = mkdtempSync(join(tmpdir(), 'kakehi-config-fuzz-'));
const leaf = issueCert(makeCa(), ['fuzz.test']);
writeFileSync(join(dir, 'cert.pem'), leaf.certPem);
writeFileSync(join(dir, 'key.pem'), leaf.keyPem);
// The source names a file in dir, so certificate paths resolve there.
const SOURCE = join(dir, 'config.yaml');

const BASE = {
  log_level: 'info',
  workers: 1,
  listeners: [
    { address: '127.0.0.1:8080', request_head_timeout_ms: 1000, answers: { '404': 'no' } },
    { address: '127.0.0.1:8443', protocol: 'https', tls_versions: ['1.3'], strict_sni: true },
  ],
  certificates: [{ listener: '127.0.0.1:8443', certificate_file: 'cert.pem', key_file: 'key.pem' }],
  clusters: [
    {
      id: 'app',
      load_balancing: 'least_connections',
      hsts: { max_age: 60 },
      backends: [{ id: 'app-1', address: '127.0.0.1:3000', weight: 5 }],
    },
  ],
  frontends: [
    { hostname: 'fuzz.test', path: '/api', path_type: 'prefix', cluster: 'app', allowed_upgrades: ['h2c'] },
    { hostname: '*', path: '^/x[0-9]+$', path_type: 'regex', redirect: { to: 'https://{host}{path}' } },
    { listener: '127.0.0.1:8080', hostname: '*.fuzz.test', method: 'GET', deny: true },
  ],
};

/** Every path to a value in a parsed document, root first. */
function pathsOf(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out = [at];
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) out.push(...pathsOf(x, [...at, i]));
  } else if (typeof v === 'object' && v !== null)
    for (const [k, x] of Object.entries(v)) out.push(...pathsOf(x, [...at, k]));
  return out;
}
const PATHS = pathsOf(BASE).slice(1);

type Edit = { path: number; kind: 'set' | 'delete' | 'add'; key: string; value: unknown };
const arbEdit: fc.Arbitrary<Edit> = fc.record({
  path: fc.nat({ max: PATHS.length - 1 }),
  kind: fc.constantFrom('set' as const, 'delete' as const, 'add' as const),
  key: fc.oneof(fc.constantFrom('id', 'address', 'cluster', 'hostname', 'backends', 'op'), arbEdgeString),
  value: arbValue,
});

/** BASE with each edit applied at one place: a value replaced, a key removed, or a key added. */
function edited(edits: Edit[]): unknown {
  const doc = structuredClone(BASE) as unknown;
  for (const e of edits) {
    const path = PATHS[e.path]!;
    let parent = doc as Record<string | number, unknown>;
    for (const k of path.slice(0, -1)) {
      const next = parent?.[k];
      if (typeof next !== 'object' || next === null) return doc;
      parent = next as Record<string | number, unknown>;
    }
    const last = path.at(-1)!;
    if (e.kind === 'set') parent[last] = e.value;
    else if (e.kind === 'delete') delete parent[last];
    else if (typeof parent[last] === 'object' && parent[last] !== null)
      (parent[last] as Record<string, unknown>)[e.key] = e.value;
  }
  return doc;
}

describe('config loader fuzz', () => {
  it('the base document is valid (the edits start from a loadable config)', FUZZ_TEST, () => {
    const c = parseConfigText(stringify(BASE), SOURCE);
    assert.equal(c.state.certificates.size, 1);
    assert.equal(c.state.frontends.size, 3);
  });

  it('objects edited at one to three places load or are refused with a config error', FUZZ_TEST, () => {
    fuzz(
      'config objects',
      fc.property(fc.array(arbEdit, { minLength: 1, maxLength: 3 }), (edits) => {
        refusedOnlyWith(CODES, () => configFromObject(edited(edits), SOURCE));
      }),
    );
  });

  it('any value at all as the whole document is refused with a config error, or loads', FUZZ_TEST, () => {
    fuzz(
      'config any value',
      fc.property(arbValue, (v) => {
        refusedOnlyWith(CODES, () => configFromObject(v, SOURCE));
      }),
    );
  });

  const text = stringify(BASE);
  it(
    'YAML text with bytes inserted, deleted or replaced loads or is refused with a config error',
    FUZZ_TEST,
    () => {
      fuzz(
        'config text',
        fc.property(
          fc.array(fc.tuple(fc.nat({ max: text.length }), fc.nat({ max: 8 }), fc.string({ maxLength: 8 })), {
            minLength: 1,
            maxLength: 4,
          }),
          (cuts) => {
            let t = text;
            for (const [at, del, ins] of cuts) t = t.slice(0, at) + ins + t.slice(at + del);
            refusedOnlyWith(CODES, () => parseConfigText(t, SOURCE));
          },
        ),
      );
    },
  );

  it(
    'YAML-shaped text (anchors, aliases, tags, flow collections) loads or is refused with a config error',
    FUZZ_TEST,
    () => {
      const token = fc.constantFrom(
        '&a ',
        '*a',
        '<<: *a',
        '!!binary ',
        '!!set ',
        '!!omap',
        '? ',
        '- ',
        ': ',
        '{',
        '}',
        '[',
        ']',
        ',',
        '\n',
        '\n  ',
        '"',
        "'",
        '|',
        '>',
        '#',
        '---\n',
        '...\n',
        '%YAML 1.2\n',
        'listeners',
        'clusters',
        'frontends',
        'address',
        '127.0.0.1:80',
        '~',
        'null',
        '1e999',
        '0x1f',
      );
      fuzz(
        'config yaml tokens',
        fc.property(fc.array(fc.oneof(token, fc.string({ maxLength: 4 })), { maxLength: 40 }), (parts) => {
          refusedOnlyWith(CODES, () => parseConfigText(parts.join(''), SOURCE));
        }),
      );
    },
  );

  it(
    'an alias to no anchor, and an alias bomb, are refused as unreadable YAML, not thrown as ReferenceError',
    FUZZ_TEST,
    () => {
      const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
      for (let i = 1; i < 10; i++)
        bomb.push(`b${i}: &b${i} [${`*${i === 1 ? 'a' : `b${i - 1}`}, `.repeat(10)}]`);
      for (const text of ['<<: *a', 'listeners: *nowhere', bomb.join('\n')]) {
        const err = refusedOnlyWith(CODES, () => parseConfigText(text, SOURCE));
        assert.ok(err instanceof Error, `refused: ${text.slice(0, 40)}`);
      }
    },
  );
});
