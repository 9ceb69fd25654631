import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configCertificateSchema, configSchema } from '../../src/config/config-schema.js';
import { ERROR_CODES } from '../../src/errors.js';
import { backendTlsSchema } from '../../src/model/backend-tls.js';
import {
  clusterSchema,
  clusterWithBackendsSchema,
  frontendSchema,
  listenerSchema,
  nestedBackendSchema,
} from '../../src/model/objects.js';
import type { Field } from '../../src/model/schema.js';
import { CHANGE_OPS } from '../../src/state/change.js';

const root = join(import.meta.dirname, '..', '..', '..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

/** The rows of the table under `## heading`, as key → default column. */
function tableUnder(doc: string, heading: string): Map<string, string> {
  const start = doc.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `docs/configuration.md has a "## ${heading}" section`);
  const next = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, next < 0 ? undefined : next);
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    // Cells split on pipes that are not escaped (`\|` stands inside type columns).
    const cells = line
      .replaceAll('\\|', '\u0000')
      .split('|')
      .map((c) => c.trim());
    const key = /^`([a-z0-9_]+)`$/.exec(cells[1] ?? '');
    if (key) rows.set(key[1]!, cells[3] ?? '');
  }
  return rows;
}

function expectedDefault(f: Field<unknown>): string {
  if (f.required) return 'required';
  return 'default' in f ? `\`${JSON.stringify(f.default)}\`` : '—';
}

describe('reference docs match the code', () => {
  const doc = read('docs/configuration.md');
  const sections: [string, Record<string, Field<unknown>>][] = [
    ['Top level', configSchema.fields],
    ['listeners[]', listenerSchema.fields],
    ['clusters[]', clusterWithBackendsSchema.fields],
    ['clusters[].backends[]', nestedBackendSchema.fields],
    [
      'clusters[].health_check',
      (clusterSchema.fields.health_check.schema as unknown as { fields: Record<string, Field<unknown>> })
        .fields,
    ],
    ['clusters[].backend_tls', backendTlsSchema.fields],
    ['frontends[]', frontendSchema.fields],
    [
      'frontends[].rate_limit',
      (frontendSchema.fields.rate_limit.schema as unknown as { fields: Record<string, Field<unknown>> })
        .fields,
    ],
    [
      'frontends[].redirect',
      (frontendSchema.fields.redirect.schema as unknown as { fields: Record<string, Field<unknown>> }).fields,
    ],
    [
      'frontends[].request_headers',
      (frontendSchema.fields.request_headers.schema as unknown as { fields: Record<string, Field<unknown>> })
        .fields,
    ],
    [
      'frontends[].basic_auth',
      (frontendSchema.fields.basic_auth.schema as unknown as { fields: Record<string, Field<unknown>> })
        .fields,
    ],
    [
      'clusters[].sticky_cookie',
      (clusterSchema.fields.sticky_cookie.schema as unknown as { fields: Record<string, Field<unknown>> })
        .fields,
    ],
    [
      'hsts',
      (clusterSchema.fields.hsts.schema as unknown as { fields: Record<string, Field<unknown>> }).fields,
    ],
    ['certificates[]', configCertificateSchema.fields],
  ];
  for (const [heading, fields] of sections) {
    it(`docs/configuration.md lists every key of ${heading} with its default, and no other`, () => {
      const rows = tableUnder(doc, heading);
      for (const [key, f] of Object.entries(fields)) {
        assert.ok(rows.has(key), `${heading}: ${key} is documented`);
        assert.equal(rows.get(key), expectedDefault(f), `${heading}: default of ${key}`);
      }
      assert.deepEqual([...rows.keys()].sort(), Object.keys(fields).sort(), `${heading}: no stale keys`);
    });
  }

  it('docs/state.md lists every change op in its table of changes, and no other', () => {
    const doc = read('docs/state.md');
    const start = doc.indexOf('\n## Changes');
    assert.ok(start >= 0, 'docs/state.md has a "## Changes" section');
    const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
    const ops = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(ops.sort(), [...CHANGE_OPS].sort());
  });

  it('docs/errors.md lists every error code, and no other', () => {
    const codes = [...read('docs/errors.md').matchAll(/^\| `(KKH_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(codes.sort(), Object.keys(ERROR_CODES).sort());
  });
});
