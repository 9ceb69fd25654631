// The DNS names a certificate covers: which names are valid in a certificate,
// which host a (wildcard) name matches, and reading a certificate's names from
// its subjectAltName or, lacking one, its subject CN. Apart from inspection: the
// SNI store needs the matching alone, with no key or chain in sight.

import type { X509Certificate } from 'node:crypto';

/** Exact (case-insensitive) or a one-label wildcard: `*.example.com` covers `a.example.com` only. */
export function nameMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  const h = host.toLowerCase();
  if (!p.startsWith('*.')) return p === h;
  const suffix = p.slice(1);
  if (!h.endsWith(suffix)) return false;
  const label = h.slice(0, h.length - suffix.length);
  return label !== '' && !label.includes('.') && label !== '*';
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** A hostname, or `*.` followed by at least two labels. */
export function isCertificateName(name: string): boolean {
  const n = name.toLowerCase();
  if (n.length === 0 || n.length > 253) return false;
  const labels = n.split('.');
  if (labels[0] === '*') {
    const rest = labels.slice(1);
    return rest.length >= 2 && rest.every((l) => LABEL.test(l));
  }
  return labels.every((l) => LABEL.test(l));
}

/**
 * Node gives `subjectAltName` as null (not undefined, whatever its types say) when
 * the extension is there but cannot be decoded: such a certificate's names are
 * unknown, and it must be refused, never served under its CN (inspect.ts).
 */
export function unreadableSubjectAltName(x509: X509Certificate): boolean {
  return (x509.subjectAltName as string | null | undefined) === null;
}

/** SAN dNSNames, or the subject CN when there is no dNSName at all. */
export function namesOf(x509: X509Certificate): string[] {
  const dns = sanDnsNames(x509.subjectAltName ?? undefined);
  const subject = (x509.subject as string | null | undefined) ?? '';
  const source = dns.length > 0 ? dns : commonNames(subject).filter(isCertificateName);
  const out: string[] = [];
  for (const n of source) {
    const lower = n.toLowerCase();
    if (!out.includes(lower)) out.push(lower);
  }
  return out;
}

/**
 * Node renders the SAN as `DNS:a, DNS:b, IP Address:…`; values with unusual
 * characters are JSON-quoted, so a comma inside quotes is not a separator.
 */
function sanDnsNames(san: string | undefined): string[] {
  if (san === undefined || san === '') return [];
  const out: string[] = [];
  for (const entry of splitOutsideQuotes(san)) {
    if (!entry.startsWith('DNS:')) continue;
    let value = entry.slice(4);
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    out.push(value);
  }
  return out;
}

function splitOutsideQuotes(s: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\' && quoted) {
      current += c + (s[i + 1] ?? '');
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (c === ',' && !quoted) {
      parts.push(current.trim());
      current = '';
    } else {
      current += c;
    }
  }
  if (current.trim() !== '') parts.push(current.trim());
  return parts;
}

function commonNames(subject: string): string[] {
  return subject
    .split('\n')
    .filter((line) => line.startsWith('CN='))
    .map((line) => line.slice(3));
}
