// Frontend routing for one listener: (Host, path, method) -> target. Built once per
// state generation from the route set and immutable afterwards. Precedence, in order:
//   host class: exact > wildcard (*.suffix) > regex labels (declaration order) > `*`,
//     falling back to the next matching host when one routes nothing for this request;
//   within a host: exact path > regex path (declaration order) > longest prefix;
//   within one path rule: a route for this method > a route for any method.
// Cost: exact and wildcard hosts are one Map lookup each, regex hosts a walk over a
// trie of labels from the right; none grows with the number of hostnames.
import { type HostRule, normalizeHost } from './host-rule.js';
import type { PathRule } from './path-rule.js';
import { RouterRuleError } from './router-rule-error.js';

export interface Route<T> {
  /** Stable frontend key (listener + hostname + path + method); unique in a Router. */
  key: string;
  host: HostRule;
  path: PathRule;
  /** An HTTP method token, compared case-sensitively (RFC 9110 §9.1); absent = any method. */
  method?: string;
  target: T;
}

/** RFC 9110 §5.6.2 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** All routes sharing one path rule within one host. The first route declared for a slot wins. */
class Slot<T> {
  any: T | undefined = undefined;
  byMethod: Map<string, T> | undefined = undefined;

  add(method: string | undefined, target: T): void {
    if (method === undefined) {
      if (this.any === undefined) this.any = target;
      return;
    }
    this.byMethod ??= new Map();
    if (!this.byMethod.has(method)) this.byMethod.set(method, target);
  }

  pick(method: string): T | undefined {
    if (this.byMethod !== undefined) {
      const t = this.byMethod.get(method);
      if (t !== undefined) return t;
    }
    return this.any;
  }
}

/** The path rules of one host rule. */
class PathTable<T> {
  private readonly exact = new Map<string, Slot<T>>();
  private readonly regex: { source: string; re: RegExp; slot: Slot<T> }[] = [];
  private readonly prefix: { prefix: string; slot: Slot<T> }[] = [];

  add(rule: PathRule, method: string | undefined, target: T): void {
    this.slotFor(rule).add(method, target);
  }

  private slotFor(rule: PathRule): Slot<T> {
    if (rule.kind === 'exact') {
      const found = this.exact.get(rule.path);
      if (found !== undefined) return found;
      const slot = new Slot<T>();
      this.exact.set(rule.path, slot);
      return slot;
    }
    if (rule.kind === 'regex') {
      const found = this.regex.find((r) => r.source === rule.re.source);
      if (found !== undefined) return found.slot;
      const slot = new Slot<T>();
      this.regex.push({ source: rule.re.source, re: rule.re, slot });
      return slot;
    }
    const found = this.prefix.find((p) => p.prefix === rule.prefix);
    if (found !== undefined) return found.slot;
    const slot = new Slot<T>();
    this.prefix.push({ prefix: rule.prefix, slot });
    return slot;
  }

  /** Longest prefix first; equal lengths cannot both match one path, so their order is moot. */
  seal(): void {
    this.prefix.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  match(path: string, method: string): T | undefined {
    const exact = this.exact.get(path);
    if (exact !== undefined) {
      const t = exact.pick(method);
      if (t !== undefined) return t;
    }
    for (const r of this.regex) {
      if (r.re.test(path)) {
        const t = r.slot.pick(method);
        if (t !== undefined) return t;
      }
    }
    for (const p of this.prefix) {
      if (path.startsWith(p.prefix)) {
        const t = p.slot.pick(method);
        if (t !== undefined) return t;
      }
    }
    return undefined;
  }
}

/** A regex host rule's leaf: its paths and its declaration rank among regex hosts. */
interface RegexHost<T> {
  order: number;
  table: PathTable<T>;
}

/** Trie of host labels from the right (`com` -> `example` -> /cdn[0-9]+/). */
class LabelNode<T> {
  exact: Map<string, LabelNode<T>> | undefined = undefined;
  regex: { source: string; re: RegExp; node: LabelNode<T> }[] = [];
  leaf: RegexHost<T> | undefined = undefined;

  child(label: string | RegExp): LabelNode<T> {
    if (typeof label === 'string') {
      this.exact ??= new Map();
      const found = this.exact.get(label);
      if (found !== undefined) return found;
      const node = new LabelNode<T>();
      this.exact.set(label, node);
      return node;
    }
    const found = this.regex.find((r) => r.source === label.source && r.re.flags === label.flags);
    if (found !== undefined) return found.node;
    const node = new LabelNode<T>();
    this.regex.push({ source: label.source, re: label, node });
    return node;
  }

  /** Collects the leaves of every rule matching the labels of host[0, end), right to left. */
  collect(host: string, end: number, out: RegexHost<T>[]): void {
    const start = host.lastIndexOf('.', end - 1) + 1;
    const label = host.slice(start, end);
    const last = start === 0;
    const exact = this.exact?.get(label);
    if (exact !== undefined) exact.visit(host, start, last, out);
    for (const r of this.regex) {
      if (r.re.test(label)) r.node.visit(host, start, last, out);
    }
  }

  private visit(host: string, start: number, last: boolean, out: RegexHost<T>[]): void {
    if (last) {
      if (this.leaf !== undefined) out.push(this.leaf);
    } else {
      this.collect(host, start - 1, out);
    }
  }
}

export class Router<T> {
  /** Number of routes the router was built from. */
  readonly size: number;
  private readonly exact = new Map<string, PathTable<T>>();
  private readonly wildcard = new Map<string, PathTable<T>>();
  private readonly regexRoot = new LabelNode<T>();
  private regexCount = 0;
  private any: PathTable<T> | undefined = undefined;

  /** @throws RouterRuleError on a duplicate key, an invalid method, a hand-built host that is not a hostname, or an unknown rule kind */
  constructor(routes: Iterable<Route<T>>) {
    const keys = new Set<string>();
    const tables = new Set<PathTable<T>>();
    for (const route of routes) {
      if (keys.has(route.key)) throw new RouterRuleError(route.key, 'duplicate route key');
      keys.add(route.key);
      if (route.method !== undefined && !TOKEN.test(route.method)) {
        throw new RouterRuleError(route.method, 'a method must be an HTTP token, such as GET');
      }
      const table = this.tableFor(route.host, route.key);
      tables.add(table);
      table.add(route.path, route.method, route.target);
    }
    for (const table of tables) table.seal();
    this.size = keys.size;
    Object.freeze(this);
  }

  /**
   * The target for a request, or undefined when nothing routes it (404) or the host is
   * not a valid hostname (callers that want a 400 for that check normalizeHost first).
   * `path` is the request path without its query string.
   */
  lookup(host: string, path: string, method: string): T | undefined {
    // Most Host headers are already normal: try them as they are before paying for
    // normalization. Every key of `exact` is a valid normal host (checked at build),
    // so a hit here is exactly a hit after normalizeHost.
    let exact = this.exact.get(host);
    let name: string | undefined = host;
    if (exact === undefined) {
      name = normalizeHost(host);
      if (name === undefined) return undefined;
      if (name !== host) exact = this.exact.get(name);
    }
    if (exact !== undefined) {
      const t = exact.match(path, method);
      if (t !== undefined) return t;
    }
    // An IPv6 literal has no labels for a wildcard or a regex to match.
    if (name.charCodeAt(0) !== 0x5b) {
      if (this.wildcard.size > 0) {
        const dot = name.indexOf('.');
        const table = dot === -1 ? undefined : this.wildcard.get(name.slice(dot + 1));
        if (table !== undefined) {
          const t = table.match(path, method);
          if (t !== undefined) return t;
        }
      }
      if (this.regexCount > 0) {
        const t = this.matchRegexHosts(name, path, method);
        if (t !== undefined) return t;
      }
    }
    return this.any?.match(path, method);
  }

  private matchRegexHosts(name: string, path: string, method: string): T | undefined {
    const found: RegexHost<T>[] = [];
    this.regexRoot.collect(name, name.length, found);
    if (found.length > 1) found.sort((a, b) => a.order - b.order);
    for (const host of found) {
      const t = host.table.match(path, method);
      if (t !== undefined) return t;
    }
    return undefined;
  }

  private tableFor(rule: HostRule, key: string): PathTable<T> {
    switch (rule.kind) {
      case 'exact':
        return getOrCreate(this.exact, normalRuleName(rule.host));
      case 'wildcard':
        return getOrCreate(this.wildcard, normalRuleName(rule.suffix));
      case 'regex': {
        let node = this.regexRoot;
        for (let i = rule.labels.length - 1; i >= 0; i--) {
          const label = rule.labels[i]!;
          node = node.child(typeof label === 'string' ? label.toLowerCase() : label);
        }
        if (node.leaf === undefined) {
          node.leaf = { order: this.regexCount++, table: new PathTable() };
        }
        return node.leaf.table;
      }
      case 'any':
        this.any ??= new PathTable();
        return this.any;
      default:
        throw new RouterRuleError(
          key,
          `unknown host rule kind ${JSON.stringify((rule as { kind: unknown }).kind)}`,
        );
    }
  }
}

/**
 * Rules from parseHostRule are already normal; hand-built ones are lowercased and
 * lose one trailing dot like request hosts, and must then be valid hostnames.
 */
function normalRuleName(name: string): string {
  const lower = name.toLowerCase();
  const normal = lower.endsWith('.') ? lower.slice(0, -1) : lower;
  if (normalizeHost(normal) !== normal) {
    throw new RouterRuleError(name, 'not a valid hostname (without port); build rules with parseHostRule');
  }
  return normal;
}

function getOrCreate<T>(map: Map<string, PathTable<T>>, name: string): PathTable<T> {
  const found = map.get(name);
  if (found !== undefined) return found;
  const table = new PathTable<T>();
  map.set(name, table);
  return table;
}
