// Reads a YAML configuration, validates all of it, and turns it into the
// process settings and the routing state. Every problem is reported at once,
// by its place in the file; nothing is half-applied.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { inspectCertificate } from '../certificate/inspect.js';
import { defaultCommandSocket } from '../command/default-socket.js';
import { type FieldIssue, formatIssue, KakehiError } from '../errors.js';
import type { AccessLogField } from '../log/access-log-fields.js';
import {
  type Certificate,
  certificateSchema,
  keyOf,
  type Listener,
  terminatesTls,
} from '../model/objects.js';
import type { Change } from '../state/change.js';
import type { ProxyState } from '../state/proxy-state.js';
import { buildState } from '../state/transaction.js';
import {
  type ConfigCertificate,
  type ConfigFile,
  type ConfigItems,
  configCertificateSchema,
  configItems,
  configSchema,
  crossCheck,
} from './config-schema.js';

/** The source name of the configuration built into kakehi. */
export const EMBEDDED_SOURCE = 'embedded default';

export interface Settings {
  readonly logLevel: ConfigFile['log_level'];
  readonly accessLog: string;
  readonly accessLogFields: readonly AccessLogField[];
  readonly drainTimeoutMs: number;
  /** 0 = one per CPU. */
  readonly workers: number;
  readonly workerTimeoutMs: number;
  /** Per worker, over all its listeners; undefined: no limit. */
  readonly maxConnections: number | undefined;
  readonly commandSocket: string;
  readonly commandSocketMode: number;
  /** Group name or gid the socket is chowned to; checked by checkRunPaths. */
  readonly commandSocketGroup: string | undefined;
  readonly stateFile: string | undefined;
}

export interface Config {
  readonly settings: Settings;
  readonly state: ProxyState;
  /** Where it came from: a file path or "embedded default". */
  readonly source: string;
}

const MAX_CONFIG_BYTES = 64 * 1024 * 1024;

export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_CONFIG_BYTES) {
      throw new Error(`it is ${buf.length} bytes; the limit is ${MAX_CONFIG_BYTES}`);
    }
    text = buf.toString('utf8');
  } catch (err) {
    throw new KakehiError('KKH_CONFIG_UNREADABLE', `cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseConfigText(text, path);
}

export function parseConfigText(text: string, source: string): Config {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => ({
      path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '',
      reason: e.message.split('\n')[0] ?? e.message,
    }));
    throw new KakehiError(
      'KKH_CONFIG_UNREADABLE',
      `${source} is not valid YAML:\n${issues.map(formatIssue).join('\n')}`,
      { issues },
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    // The yaml library finds an alias to no anchor, or one expanding past
    // maxAliasCount, only here, and throws a plain ReferenceError.
    const reason = (err as Error).message;
    throw new KakehiError('KKH_CONFIG_UNREADABLE', `${source} is not valid YAML: ${reason}`, {
      issues: [{ path: '', reason }],
      cause: err,
    });
  }
  return configFromObject(raw, source);
}

export function configFromObject(given: unknown, source: string): Config {
  const issues: FieldIssue[] = [];
  const { raw, fromFiles } = readBackendTlsFiles(given, baseOf(source), issues);
  const file = configSchema.parse(raw, '', issues);
  // Name the file the operator wrote, not the PEM field it became.
  for (const i of issues) i.path = fromFiles.get(i.path) ?? i.path;
  // A file that did not parse whole still gets the cross-checks and certificate
  // files of the items that did, so one pass reports every error.
  const items = file ?? configItems(raw);
  crossCheck(items, issues);
  const certificates = readCertificates(items, certificateItems(raw, file), source, issues);
  if (file === undefined || issues.length > 0) {
    throw invalid(source, issues);
  }
  return { source, settings: settingsOf(file), state: stateOf(file, certificates, source) };
}

/** The certificates of a file, each parsed on its own when the file did not parse whole. */
function certificateItems(
  raw: unknown,
  file: ConfigFile | undefined,
): readonly (ConfigCertificate | undefined)[] {
  if (file !== undefined) return file.certificates;
  const list = (raw as { certificates?: unknown } | null)?.certificates;
  // Its own issues come from the whole-file parse.
  return Array.isArray(list) ? list.map((c: unknown) => configCertificateSchema.parse(c, '', [])) : [];
}

function settingsOf(file: ConfigFile): Settings {
  return {
    logLevel: file.log_level,
    accessLog: file.access_log,
    accessLogFields: file.access_log_fields,
    drainTimeoutMs: file.drain_timeout_ms,
    workers: file.workers,
    workerTimeoutMs: file.worker_timeout_ms,
    maxConnections: file.max_connections,
    commandSocket: file.command_socket ?? defaultCommandSocket('listen'),
    commandSocketMode: Number.parseInt(file.command_socket_mode, 8),
    commandSocketGroup: file.command_socket_group,
    stateFile: file.state_file,
  };
}

/**
 * Reads each certificate's PEM files (relative to the config file) and checks
 * the result like any certificate change, dates included: a config that would
 * serve an expired certificate is refused unless it says allow_expired.
 */
function readCertificates(
  items: ConfigItems,
  certificates: readonly (ConfigCertificate | undefined)[],
  source: string,
  issues: FieldIssue[],
): Certificate[] {
  const base = baseOf(source);
  const listeners = new Map<string, Listener>();
  for (const l of items.listeners ?? []) if (l !== undefined) listeners.set(keyOf('listener', l), l);
  const out: Certificate[] = [];
  certificates.forEach((c, i) => {
    if (c === undefined) return;
    const at = `certificates[${i}]`;
    const listenerKey = keyOf('listener', { address: c.listener });
    const l = listeners.get(listenerKey);
    // A listener list that did not parse, or a listener that failed by this address: not judged.
    const unsure = items.listeners === undefined || items.unsure?.listeners.has(listenerKey) === true;
    if (l === undefined && !unsure)
      issues.push({ path: `${at}.listener`, reason: `no listener has the address "${c.listener}"` });
    else if (l !== undefined && !terminatesTls(l.protocol))
      issues.push({
        path: `${at}.listener`,
        reason: `listener "${c.listener}" is ${l.protocol}; certificates go on tls and https listeners`,
      });
    const read = (field: string, file: string | undefined): string | undefined => {
      if (file === undefined) return '';
      try {
        return readFileSync(resolve(base, file), 'utf8');
      } catch (err) {
        issues.push({ path: `${at}.${field}`, reason: `cannot read ${file}: ${(err as Error).message}` });
        return undefined;
      }
    };
    const certificate = read('certificate_file', c.certificate_file);
    const chain = read('chain_file', c.chain_file);
    const key = read('key_file', c.key_file);
    if (certificate === undefined || chain === undefined || key === undefined) return;
    const mine: FieldIssue[] = [];
    const raw = {
      listener: c.listener,
      certificate,
      chain,
      key,
      names: c.names,
      default: c.default,
      allow_expired: c.allow_expired,
    };
    const cert = certificateSchema.parse(raw, at, mine);
    if (cert !== undefined) {
      const r = inspectCertificate(cert, { now: Date.now() });
      if (!r.ok) for (const p of r.issues) mine.push({ path: `${at}.${p.path}`, reason: p.reason });
    }
    // Name the file the operator wrote, not the PEM field it became.
    for (const p of mine)
      issues.push({ path: p.path.replace(/\.(certificate|chain|key)$/, '.$1_file'), reason: `${p.reason}` });
    if (cert !== undefined && mine.length === 0) out.push(cert);
  });
  return out;
}

function baseOf(source: string): string {
  return source === EMBEDDED_SOURCE ? process.cwd() : dirname(resolve(source));
}

/** backend_tls fields a config file may give as a file, read when it is loaded. */
const BACKEND_TLS_FILES = {
  ca_file: 'ca',
  client_certificate_file: 'client_certificate',
  client_key_file: 'client_key',
};

/**
 * A copy of the file's object with each cluster's backend_tls `*_file` read
 * (relative to the config file) into its PEM field, and where each such field
 * came from, so an issue names the file's key.
 */
function readBackendTlsFiles(
  raw: unknown,
  base: string,
  issues: FieldIssue[],
): { raw: unknown; fromFiles: Map<string, string> } {
  const fromFiles = new Map<string, string>();
  const clusters = (raw as { clusters?: unknown } | null)?.clusters;
  if (!Array.isArray(clusters)) return { raw, fromFiles };
  const read = clusters.map((c: unknown, i) => {
    const tls = (c as { backend_tls?: unknown } | null)?.backend_tls;
    if (typeof tls !== 'object' || tls === null || Array.isArray(tls)) return c;
    const out: Record<string, unknown> = { ...tls };
    const at = `clusters[${i}].backend_tls`;
    for (const [fileKey, pemKey] of Object.entries(BACKEND_TLS_FILES)) {
      const file = out[fileKey];
      if (file === undefined) continue;
      delete out[fileKey];
      if (typeof file !== 'string' || file === '') {
        issues.push({ path: `${at}.${fileKey}`, reason: 'expected a file path' });
        continue;
      }
      if (out[pemKey] !== undefined) {
        issues.push({ path: `${at}.${fileKey}`, reason: `give ${pemKey} or ${fileKey}, not both` });
        continue;
      }
      try {
        out[pemKey] = readFileSync(resolve(base, file), 'utf8');
        fromFiles.set(`${at}.${pemKey}`, `${at}.${fileKey}`);
      } catch (err) {
        issues.push({ path: `${at}.${fileKey}`, reason: `cannot read ${file}: ${(err as Error).message}` });
      }
    }
    return { ...(c as object), backend_tls: out };
  });
  return { raw: { ...(raw as object), clusters: read }, fromFiles };
}

function stateOf(file: ConfigFile, certs: readonly Certificate[], source: string): ProxyState {
  const puts: Change[] = [
    ...file.listeners.map((listener): Change => ({ op: 'put_listener', listener })),
    ...certs.map((certificate): Change => ({ op: 'put_certificate', certificate })),
    ...file.clusters.map(({ backends: _backends, ...cluster }): Change => ({ op: 'put_cluster', cluster })),
    ...file.clusters.flatMap((c) =>
      c.backends.map((b): Change => ({ op: 'put_backend', backend: { cluster: c.id, ...b } })),
    ),
    ...file.frontends.map((frontend): Change => ({ op: 'put_frontend', frontend })),
  ];
  // Every object here comes from the file: a reload may update or delete it.
  const r = buildState(
    puts.map((change) => ({ change, source: 'config' })),
    'config',
  );
  if (r.ok) return r.state;
  // crossCheck names these by their place in the file first; reaching here is a bug.
  throw invalid(source, r.issues);
}

function invalid(source: string, issues: FieldIssue[]): KakehiError {
  return new KakehiError(
    'KKH_CONFIG_INVALID',
    `${source} has ${issues.length} error${issues.length === 1 ? '' : 's'}:\n${issues.map(formatIssue).join('\n')}`,
    { issues },
  );
}
