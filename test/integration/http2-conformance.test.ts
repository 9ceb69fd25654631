// h2spec, the HTTP/2 conformance suite (RFC 7540/9113, RFC 7541), against a
// real kakehi HTTPS listener: every case passes except the known failures
// below, each a behaviour of nghttp2 or Node's http2 layer that kakehi cannot
// change from outside (a bare node:http2 server fails the same seven). Each
// listed case must still fail, so the list never outlives its reason.

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type HttpsEcho, startHttpsEcho } from '../helpers/https-echo.js';

const run = promisify(execFile);

/** Known failures, by h2spec's own test id, with why. */
const KNOWN_FAILURES = new Map([
  // nghttp2 does not remember streams once closed and ignores frames on them
  // (nghttp2 issue #1166); RFC 9113 §5.1 makes a connection error here a MAY.
  ['http2/5.1/8', 'DATA after the client reset the stream: ignored by nghttp2, not STREAM_CLOSED'],
  ['http2/5.1/9', 'HEADERS after the client reset the stream: ignored by nghttp2, not STREAM_CLOSED'],
  ['http2/5.1/11', 'DATA on a stream closed both ways: ignored by nghttp2, not STREAM_CLOSED'],
  ['http2/5.1/12', 'HEADERS on a stream closed both ways: ignored by nghttp2, not STREAM_CLOSED'],
  // nghttp2_session_on_request_headers_received: a HEADERS with an old stream id
  // is ignored unless the stream is known idle or closed (a deliberate choice).
  ['http2/5.1.1/2', 'stream id smaller than a previous one: ignored by nghttp2, not PROTOCOL_ERROR'],
  // node_http2.cc Http2Session::HandlePingFrame treats an unsolicited PING ACK as
  // a connection error on purpose: GOAWAY INTERNAL_ERROR and close.
  ['http2/6.7/2', 'PING with ACK the server never asked for: Node closes the connection'],
  // nghttp2 detects the overflow (FLOW_CONTROL_ERROR) but Node tears the session
  // down on the library error, and Http2Session.destroy(error) sends GOAWAY
  // INTERNAL_ERROR when given no code (Node's http2 docs); so does 6.7/2.
  ['http2/6.9.1/2', 'connection window past 2^31-1: GOAWAY INTERNAL_ERROR, not FLOW_CONTROL_ERROR'],
]);

/** h2spec on PATH, or where `go install` puts it. */
function findH2spec(): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, 'h2spec'))) return join(dir, 'h2spec');
  }
  let gopath = '';
  try {
    gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim();
  } catch {
    // no Go: the message below names the fix
  }
  const candidate = join(gopath, 'bin', 'h2spec');
  if (gopath !== '' && existsSync(candidate)) return candidate;
  throw new Error(
    'h2spec not found on PATH or in $(go env GOPATH)/bin: go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible (as .ci/run does)',
  );
}

interface Outcome {
  passed: string[];
  failed: string[];
  skipped: string[];
}

/**
 * h2spec's JUnit report: a test's id is its suite's package and its 1-based
 * place in that suite, the same id h2spec takes on its command line.
 */
function parseReport(xml: string): Outcome {
  const out: Outcome = { passed: [], failed: [], skipped: [] };
  const suites = xml.matchAll(/<testsuite [^>]*package="([^"]+)"[^>]*>([\s\S]*?)<\/testsuite>/g);
  for (const [, pkg, body] of suites) {
    const cases = (body as string).matchAll(/<testcase [^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g);
    let n = 0;
    for (const [, inner] of cases) {
      const id = `${pkg}/${++n}`;
      if (inner !== undefined && /<(error|failure)[ >]/.test(inner)) out.failed.push(id);
      else if (inner !== undefined && /<skipped[ />]/.test(inner)) out.skipped.push(id);
      else out.passed.push(id);
    }
  }
  return out;
}

describe('h2spec against an HTTPS listener', () => {
  let served: HttpsEcho;
  let h2spec: string;

  before(async () => {
    h2spec = findH2spec();
    served = await startHttpsEcho('h2spec.test');
  });

  after(async () => {
    await served?.close();
  });

  it('passes every case but the known nghttp2/Node failures, each of which still fails', async () => {
    const { kakehi, ca } = served;
    const report = join(ca.dir, 'h2spec.xml');
    // h2spec exits 1 when any case fails: the report, not the exit code, is the verdict.
    await run(h2spec, ['-t', '-k', '-h', '127.0.0.1', '-p', String(kakehi.port), '-j', report], {
      maxBuffer: 16 * 1024 * 1024,
    }).catch((err: { code?: unknown }) => {
      if (err.code !== 1) throw err;
    });
    const outcome = parseReport(readFileSync(report, 'utf8'));
    assert.ok(outcome.passed.length > 100, `h2spec ran: ${outcome.passed.length} passed`);
    assert.deepEqual(outcome.skipped, [], 'no case skipped');
    assert.deepEqual(outcome.failed.sort(), [...KNOWN_FAILURES.keys()].sort());
    assert.ok(!kakehi.logs.some((l) => l.msg === 'worker crashed; restarting it'), 'no worker crashed');
  });
});
