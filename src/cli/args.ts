// A small, strict argument parser: known flags only, each with its value, so a
// typo is an error that names it rather than a silently ignored flag.

export interface FlagSpec {
  /** Takes a value (`-c FILE`) or is a switch (`--json`). */
  value: boolean;
  short?: string;
}

export type ParsedArgs = { flags: Map<string, string | true>; positional: string[] } | { error: string };

export function parseArgs(argv: readonly string[], spec: Record<string, FlagSpec>): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  const byShort = new Map(Object.entries(spec).flatMap(([k, v]) => (v.short ? [[v.short, k] as const] : [])));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      inline = eq < 0 ? undefined : a.slice(eq + 1);
      if (!(name in spec)) return { error: `unknown option --${name}` };
    } else if (a.startsWith('-') && a.length > 1) {
      name = byShort.get(a.slice(1));
      if (name === undefined) return { error: `unknown option ${a}` };
    } else {
      positional.push(a);
      continue;
    }
    const s = spec[name]!;
    if (s.value) {
      const v = inline ?? argv[++i];
      if (v === undefined) return { error: `option --${name} needs a value` };
      flags.set(name, v);
    } else {
      if (inline !== undefined) return { error: `option --${name} takes no value` };
      flags.set(name, true);
    }
  }
  return { flags, positional };
}
