// The path a frontend sends to its backend: a prefix stripped or replaced. The
// query string goes on as it came, and the path always starts with "/" (a
// backend would refuse an empty or relative request-target).

export interface PathRewriteSpec {
  strip_prefix?: string | undefined;
  replace_prefix?: { from: string; to: string } | undefined;
}

/** The rewrite of a request-target; undefined when the frontend has none. */
export type PathRewrite = (target: string, path: string) => string;

export function compilePathRewrite(f: PathRewriteSpec): PathRewrite | undefined {
  const from = f.strip_prefix ?? f.replace_prefix?.from;
  if (from === undefined) return undefined;
  const to = f.replace_prefix?.to ?? '';
  return (target, path) => {
    if (!path.startsWith(from)) return target;
    const rest = path.slice(from.length);
    // "/v2/" + "/users" would give a "//" no rule wrote.
    let out = to.endsWith('/') && rest.startsWith('/') ? to + rest.slice(1) : to + rest;
    if (!out.startsWith('/')) out = `/${out}`;
    // The query (and anything after the path) is kept byte for byte.
    return out + target.slice(path.length);
  };
}
