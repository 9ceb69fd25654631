// A cluster's backend_tls as every entry point reads it: the PEM checks and
// their named errors, the config file's *_file keys, the name a backend is
// checked against, the reason a failed handshake is counted under, and the
// client key kept out of what is shown.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configFromObject } from '../../src/config/load-config.js';
import type { FieldIssue } from '../../src/errors.js';
import { KakehiError } from '../../src/errors.js';
import { redactChange } from '../../src/main/command/certificate-output.js';
import { clusterSchema } from '../../src/model/objects.js';
import { serverNameFor, tlsFailureReason } from '../../src/proxy/backend-tls.js';
import { issueCert, makeCa } from '../helpers/certs.js';

const ca = makeCa({ name: 'unit backend CA' });
const client = issueCert(ca, ['kakehi-client'], { clientAuth: true });
const other = issueCert(ca, ['someone-else'], { clientAuth: true });

function clusterIssues(backend_tls: unknown): string[] {
  const issues: FieldIssue[] = [];
  clusterSchema.parse({ id: 'api', backend_tls }, 'cluster', issues);
  return issues.map((i) => `${i.path}: ${i.reason}`);
}

function configIssues(raw: unknown): string[] {
  try {
    configFromObject(raw, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof KakehiError);
    assert.equal(err.code, 'KKH_CONFIG_INVALID');
    return err.issues.map((i) => `${i.path}: ${i.reason}`);
  }
  return [];
}

describe('backend_tls settings', () => {
  it('takes a CA, a server name and a matching client pair; {} is TLS with verification on', () => {
    assert.deepEqual(
      clusterIssues({
        ca: ca.certPem,
        server_name: 'api.internal',
        client_certificate: client.certPem,
        client_key: client.keyPem,
      }),
      [],
    );
    const issues: FieldIssue[] = [];
    const c = clusterSchema.parse({ id: 'api', backend_tls: {} }, '', issues);
    assert.deepEqual(c?.backend_tls, { verify: true, min_version: '1.2' });
  });

  it('refuses a client certificate without its key, and a key that is not its own, naming client_key', () => {
    assert.deepEqual(clusterIssues({ client_certificate: client.certPem }), [
      'cluster.backend_tls.client_key: client_certificate and client_key go together; this one is missing',
    ]);
    assert.deepEqual(clusterIssues({ client_certificate: client.certPem, client_key: other.keyPem }), [
      "cluster.backend_tls.client_key: does not match client_certificate's public key",
    ]);
  });

  it('refuses a CA that holds no certificate or a private key, and names the keys other proxies use', () => {
    assert.deepEqual(clusterIssues({ ca: 'not pem' }), [
      'cluster.backend_tls.ca: holds no PEM certificates (-----BEGIN CERTIFICATE-----)',
    ]);
    assert.deepEqual(clusterIssues({ ca: ca.certPem + client.keyPem }), [
      'cluster.backend_tls.ca: holds a private key block; a private key goes in client_key only',
    ]);
    assert.deepEqual(clusterIssues({ sni: 'api.internal', insecure_skip_verify: true }), [
      'cluster.backend_tls.sni: unknown key; use server_name',
      'cluster.backend_tls.insecure_skip_verify: unknown key; use verify (false)',
    ]);
    assert.deepEqual(clusterIssues({ server_name: '10.0.0.1:443' }), [
      'cluster.backend_tls.server_name: "10.0.0.1:443" is not a DNS name',
    ]);
  });

  it('refuses material OpenSSL will not load (a 512-bit RSA client key), before any worker meets it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kakehi-weak-'));
    try {
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'rsa:512', '-nodes', '-subj', '/CN=weak', '-days', '1'].concat([
          '-keyout',
          join(dir, 'k.pem'),
          '-out',
          join(dir, 'c.pem'),
        ]),
        { stdio: 'ignore' },
      );
      const issues = clusterIssues({
        client_certificate: readFileSync(join(dir, 'c.pem'), 'utf8'),
        client_key: readFileSync(join(dir, 'k.pem'), 'utf8'),
      });
      assert.deepEqual(
        issues.map((i) => i.replace(/: OpenSSL refuses this material: .*key too small.*/, ': too small')),
        ['cluster.backend_tls: too small'],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads ca_file and the client pair from files in a config file, naming the file key on error', () => {
    const loaded = configFromObject(
      {
        clusters: [
          {
            id: 'api',
            backend_tls: {
              ca_file: ca.certPath,
              client_certificate_file: client.certPath,
              client_key_file: client.keyPath,
            },
          },
        ],
      },
      'test.yaml',
    );
    const tls = loaded.state.clusters.get('api')?.backend_tls;
    assert.equal(tls?.ca, ca.certPem);
    assert.equal(tls?.client_key, client.keyPem);
    assert.deepEqual(
      configIssues({
        clusters: [
          { id: 'a', backend_tls: { ca_file: '/nonexistent/ca.pem' } },
          { id: 'b', backend_tls: { ca: ca.certPem, ca_file: ca.certPath } },
          { id: 'c', backend_tls: { ca_file: client.keyPath } },
        ],
      }).map((i) => i.replace(/: cannot read .*/, ': cannot read')),
      [
        'clusters[0].backend_tls.ca_file: cannot read',
        'clusters[1].backend_tls.ca_file: give ca or ca_file, not both',
        'clusters[2].backend_tls.ca_file: holds a private key block; a private key goes in client_key only',
      ],
    );
  });

  it('checks a name, else the address host when it is a name; an IP address gets no SNI', () => {
    assert.equal(serverNameFor({ serverName: 'api.internal' }, '10.0.0.1'), 'api.internal');
    assert.equal(serverNameFor({ serverName: undefined }, 'api-1.internal'), 'api-1.internal');
    assert.equal(serverNameFor({ serverName: undefined }, '10.0.0.1'), undefined);
    assert.equal(serverNameFor({ serverName: undefined }, '::1'), undefined);
  });

  it('counts a failed handshake under a reason from a small fixed set', () => {
    const err = (code: string, message = 'x') => Object.assign(new Error(message), { code });
    assert.equal(tlsFailureReason(err('ERR_TLS_CERT_ALTNAME_INVALID')), 'hostname_mismatch');
    assert.equal(tlsFailureReason(err('UNABLE_TO_VERIFY_LEAF_SIGNATURE')), 'untrusted_certificate');
    assert.equal(tlsFailureReason(err('DEPTH_ZERO_SELF_SIGNED_CERT')), 'untrusted_certificate');
    assert.equal(tlsFailureReason(err('CERT_HAS_EXPIRED')), 'certificate_dates');
    assert.equal(tlsFailureReason(err('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')), 'alert');
    assert.equal(tlsFailureReason(err('ECONNRESET')), 'closed');
    assert.equal(tlsFailureReason(err('ERR_SOMETHING_NEW')), 'other');
  });

  it('shows a cluster without its client key', () => {
    const cluster = clusterSchema.parse(
      { id: 'api', backend_tls: { client_certificate: client.certPem, client_key: client.keyPem } },
      '',
      [],
    );
    assert.ok(cluster !== undefined);
    const shown = redactChange({ op: 'put_cluster', cluster });
    assert.ok(shown.op === 'put_cluster');
    assert.equal(shown.cluster.backend_tls?.client_key, '<redacted>');
    assert.equal(shown.cluster.backend_tls?.client_certificate, client.certPem);
  });
});
