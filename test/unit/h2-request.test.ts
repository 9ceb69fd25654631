// The HTTP/2 header block to HTTP/1.1 head translation, fed header lists
// directly: what reaches the request parser, and every block RFC 9113 calls
// malformed refused before it could frame the request differently downstream.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type H2RequestHead, h1RequestOfH2, h1TrailersOfH2 } from '../../src/proxy/h2-request.js';

const BASE = [':method', 'GET', ':scheme', 'https', ':authority', 'a.test', ':path', '/p?q=1'];

function head(raw: string[], endStream = true): H2RequestHead {
  const r = h1RequestOfH2(raw, endStream);
  if (typeof r === 'string') assert.fail(`expected a head, got refusal: ${r}`);
  return r;
}

function refused(raw: string[], reason: RegExp, endStream = true): void {
  const r = h1RequestOfH2(raw, endStream);
  assert.equal(typeof r, 'string', `expected a refusal, got ${JSON.stringify(r)}`);
  assert.match(r as string, reason);
}

describe('h1RequestOfH2', () => {
  it('turns the pseudo-headers into the request line and Host, regular fields after in order', () => {
    const r = head([...BASE, 'accept', 'text/html', 'x-one', '1']);
    assert.equal(r.head, 'GET /p?q=1 HTTP/1.1\r\nhost: a.test\r\naccept: text/html\r\nx-one: 1\r\n\r\n');
    assert.equal(r.method, 'GET');
    assert.equal(r.framing, 'none');
  });

  it('takes Host from a host field when :authority is absent', () => {
    const r = head([':method', 'GET', ':scheme', 'https', ':path', '/', 'host', 'h.test']);
    assert.match(r.head, /^GET \/ HTTP\/1\.1\r\nhost: h\.test\r\n\r\n$/);
  });

  it('accepts a host field equal to :authority and sends one Host', () => {
    const r = head([...BASE, 'host', 'a.test']);
    assert.equal(r.head.match(/^host:/gim)?.length, 1);
    assert.match(r.head, /\r\nhost: a\.test\r\n/);
  });

  it('refuses a host field that differs from :authority', () => {
    refused([...BASE, 'host', 'b.test'], /host "b\.test" differs from :authority "a\.test"/);
  });

  it('joins cookie crumbs with "; " into one cookie field', () => {
    const r = head([...BASE, 'cookie', 'a=1', 'x-mid', 'm', 'cookie', 'b=2', 'cookie', 'c=3']);
    assert.equal(r.head.match(/^cookie:/gim)?.length, 1);
    assert.match(r.head, /\r\ncookie: a=1; b=2; c=3\r\n/);
    assert.match(r.head, /\r\nx-mid: m\r\n/);
  });

  it('drops te: trailers and refuses any other te', () => {
    const r = head([...BASE, 'te', 'trailers']);
    assert.doesNotMatch(r.head, /\r\nte:/i);
    refused([...BASE, 'te', 'gzip'], /te other than "trailers"/);
    refused([...BASE, 'te', 'trailers, gzip'], /te other than "trailers"/);
  });

  for (const name of ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']) {
    it(`refuses the connection-specific field ${name}`, () => {
      refused(
        [...BASE, name, name === 'transfer-encoding' ? 'chunked' : 'x'],
        new RegExp(`connection-specific field ${name}`),
      );
    });
  }

  it('refuses an uppercase field name', () => {
    refused([...BASE, 'X-Upper', '1'], /field name X-Upper is not lowercase/);
  });

  it('refuses a pseudo-header after a regular field', () => {
    refused(
      [':method', 'GET', ':scheme', 'https', 'accept', '*/*', ':path', '/'],
      /pseudo-header :path after a regular field/,
    );
  });

  it('refuses a block without :method, :path or :scheme, and an empty :path', () => {
    const without = (name: string) => {
      const out: string[] = [];
      for (let i = 0; i < BASE.length; i += 2) if (BASE[i] !== name) out.push(BASE[i]!, BASE[i + 1]!);
      return out;
    };
    refused(without(':method'), /no :method/);
    refused(without(':path'), /no :path/);
    refused(without(':scheme'), /no :scheme/);
    refused([':method', 'GET', ':scheme', 'https', ':path', ''], /no :path/);
  });

  it('refuses a pseudo-header given twice', () => {
    refused([...BASE.slice(0, 6), ':method', 'POST', ':path', '/'], /two :method fields/);
    refused([...BASE, ':path', '/again'], /two :path fields/);
  });

  it('refuses CONNECT and the :protocol pseudo-header (no extended CONNECT)', () => {
    refused([':method', 'CONNECT', ':authority', 'a.test:443'], /no :path|CONNECT is not served/);
    refused(
      [':method', 'CONNECT', ':scheme', 'https', ':authority', 'a.test', ':path', '/'],
      /CONNECT is not served/,
    );
    refused([...BASE, ':protocol', 'websocket'], /pseudo-header :protocol is not served/);
  });

  it('frames the body: none when HEADERS ends the stream, length with content-length, else chunked', () => {
    const post = [':method', 'POST', ':scheme', 'https', ':authority', 'a.test', ':path', '/up'];
    const none = head(post, true);
    assert.equal(none.framing, 'none');
    assert.doesNotMatch(none.head, /transfer-encoding/);

    const length = head([...post, 'content-length', '5'], false);
    assert.equal(length.framing, 'length');
    assert.match(length.head, /\r\ncontent-length: 5\r\n/);
    assert.doesNotMatch(length.head, /transfer-encoding/);

    const chunked = head(post, false);
    assert.equal(chunked.framing, 'chunked');
    assert.match(chunked.head, /\r\ntransfer-encoding: chunked\r\n\r\n$/);
    assert.equal(chunked.method, 'POST');
  });
});

describe('h1TrailersOfH2', () => {
  it('keeps ordinary trailer fields, each value of a list on its own line', () => {
    assert.equal(
      h1TrailersOfH2({ 'x-checksum': 'abc', 'grpc-status': '0', 'x-many': ['1', '2'] }),
      'x-checksum: abc\r\ngrpc-status: 0\r\nx-many: 1\r\nx-many: 2\r\n',
    );
  });

  it('drops pseudo-headers and fields that frame, route or authenticate a message', () => {
    const out = h1TrailersOfH2({
      ':status': '200',
      'content-length': '9',
      'transfer-encoding': 'chunked',
      host: 'evil.test',
      authorization: 'Basic eA==',
      cookie: 'a=1',
      'content-type': 'text/plain',
      trailer: 'x',
      te: 'trailers',
      connection: 'close',
      'x-kept': 'yes',
      'x-undefined': undefined,
    });
    assert.equal(out, 'x-kept: yes\r\n');
  });
});
