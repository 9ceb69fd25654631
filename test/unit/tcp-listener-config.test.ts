import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configFromObject } from '../../src/config/load-config.js';
import { KakehiError } from '../../src/errors.js';

function issuesOf(raw: unknown): string[] {
  try {
    configFromObject(raw, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof KakehiError);
    assert.equal(err.code, 'KKH_CONFIG_INVALID');
    return err.issues.map((i) => `${i.path}: ${i.reason}`);
  }
  return [];
}

describe('tcp and tls listeners in a configuration file', () => {
  it('takes a tcp and a tls listener, each with its cluster', () => {
    const c = configFromObject(
      {
        listeners: [
          { address: '127.0.0.1:5432', protocol: 'tcp', cluster: 'pg' },
          { address: '127.0.0.1:6380', protocol: 'tls', cluster: 'pg' },
        ],
        clusters: [{ id: 'pg' }],
      },
      'test.yaml',
    );
    assert.deepEqual(
      [...c.state.listeners.values()].map((l) => [l.protocol, l.cluster]),
      [
        ['tcp', 'pg'],
        ['tls', 'pg'],
      ],
    );
  });

  it('names a missing cluster, a cluster on an http listener and an unknown cluster id', () => {
    assert.deepEqual(
      issuesOf({
        listeners: [
          { address: '127.0.0.1:1', protocol: 'tcp' },
          { address: '127.0.0.1:2', cluster: 'pg' },
          { address: '127.0.0.1:3', protocol: 'tls', cluster: 'nope' },
        ],
        clusters: [{ id: 'pg' }],
      }),
      [
        'listeners[0].cluster: a tcp listener needs the cluster its connections go to',
        'listeners[1].cluster: an http listener routes by its frontends; cluster is for tcp and tls listeners',
        'listeners[2].cluster: no cluster has the id "nope"',
      ],
    );
  });

  it('judges sni_clusters: tls_passthrough only, needs it or a cluster, and names existing clusters', () => {
    assert.deepEqual(
      issuesOf({
        listeners: [
          { address: '127.0.0.1:1', protocol: 'tls_passthrough' },
          { address: '127.0.0.1:2', protocol: 'tcp', cluster: 'pg', sni_clusters: { 'a.test': 'pg' } },
          { address: '127.0.0.1:3', protocol: 'tls_passthrough', sni_clusters: { 'a.test': 'nope' } },
          { address: '127.0.0.1:4', protocol: 'tls_passthrough', sni_clusters: { 'A.test': 'pg' } },
        ],
        clusters: [{ id: 'pg' }],
      }),
      [
        'listeners[0].sni_clusters: a tls_passthrough listener needs sni_clusters, cluster, or both',
        'listeners[1].sni_clusters: sni_clusters is for tls_passthrough listeners',
        'listeners[3].sni_clusters.A.test: "A.test" is not a lowercase DNS name or a one-label *.wildcard',
        'listeners[2].sni_clusters: no cluster has the id "nope"',
      ],
    );
  });
});
