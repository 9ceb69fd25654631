// Micro-benchmark of Router.lookup with 10, 1,000 and 10,000 hostnames (mostly
// exact, a quarter wildcard, three regex), for hits of each host class and for
// misses. The 10k/10 throughput ratio shows whether lookup cost grows with size.
// Run: npm run build && node dist/bench/micro-router.js
import { pathToFileURL } from 'node:url';
import { Bench } from 'tinybench';
import { parseHostRule } from '../src/router/host-rule.js';
import { parsePathRule } from '../src/router/path-rule.js';
import { type Route, Router } from '../src/router/router.js';

const SIZES = [10, 1_000, 10_000] as const;
/** Lookups per measured call: one lookup is tens of nanoseconds, below timer resolution. */
const BATCH = 1_024;
/**
 * Distinct hosts in the "hot" batches, the same at every size, so the 10k/10 ratio
 * compares the lookup structure rather than how much of it fits in CPU caches. The
 * "every host" batch shows that second effect: 1,024 distinct hosts at 10k.
 */
const HOT = 8;
/** The linear baseline is thousands of times slower at 10k hostnames; fewer lookups per call. */
const LINEAR_BATCH = 16;
const REGEX_HOSTS = [
  '/cdn[0-9]+/.static.example.net',
  'api./eu|us/.svc.example.net',
  '/[a-z]+-[0-9]+/.preview.example.net',
];

interface Request {
  host: string;
  path: string;
  method: string;
}

interface Corpus {
  routes: Route<string>[];
  router: Router<string>;
  requests: Record<string, Request[]>;
}

/** `hostnames` host rules, each with the three path rules a typical site has. */
function buildCorpus(hostnames: number): Corpus {
  const routes: Route<string>[] = [];
  const exact: string[] = [];
  const wildcard: string[] = [];
  const add = (hostRule: string, i: number) => {
    const host = parseHostRule(hostRule);
    routes.push(
      { key: `${i}/`, host, path: parsePathRule('prefix', '/'), target: `c${i}` },
      { key: `${i}/api`, host, path: parsePathRule('prefix', '/api/'), target: `c${i}-api` },
      { key: `${i}/health`, host, path: parsePathRule('exact', '/health'), method: 'GET', target: `c${i}-h` },
    );
  };
  for (const [i, h] of REGEX_HOSTS.entries()) add(h, -1 - i);
  for (let i = 0; i < hostnames - REGEX_HOSTS.length; i++) {
    if (i % 4 === 3) {
      add(`*.tenant${i}.example.org`, i);
      wildcard.push(`shop.tenant${i}.example.org`);
    } else {
      add(`www.site${i}.example${i % 97}.com`, i);
      exact.push(`www.site${i}.example${i % 97}.com`);
    }
  }
  const paths = ['/', '/api/v1/users', '/health', '/static/app.js'];
  /** A batch cycling over `distinct` hosts taken evenly across the list. */
  const batch = (hosts: string[], distinct = hosts.length): Request[] => {
    const step = hosts.length / Math.min(distinct, hosts.length);
    const chosen = Array.from(
      { length: Math.min(distinct, hosts.length) },
      (_, k) => hosts[Math.floor(k * step)]!,
    );
    return Array.from({ length: BATCH }, (_, k) => ({
      host: chosen[(k * 7919) % chosen.length]!,
      path: paths[k % paths.length]!,
      method: 'GET',
    }));
  };
  return {
    routes,
    router: new Router(routes),
    requests: {
      [`exact hit, ${HOT} hosts`]: batch(exact, HOT),
      'exact hit, every host': batch(exact),
      [`wildcard hit, ${HOT} hosts`]: batch(wildcard, HOT),
      'regex hit': batch(['cdn7.static.example.net', 'api.eu.svc.example.net', 'pr-42.preview.example.net']),
      miss: batch([
        'www.unknown.example.com',
        'a.b.tenant3.example.org',
        'cdnx.static.example.net',
        'nothing',
      ]),
    },
  };
}

export async function runRouterBench(): Promise<void> {
  let sink = 0;
  const bench = new Bench({ time: 500, warmupTime: 100 });
  const batchOf = new Map<string, number>();
  for (const size of SIZES) {
    const { routes, router, requests } = buildCorpus(size);
    for (const [kind, list] of Object.entries(requests)) {
      batchOf.set(`${size}|${kind}`, BATCH);
      bench.add(`${size}|${kind}`, () => {
        for (const q of list) if (router.lookup(q.host, q.path, q.method) !== undefined) sink++;
      });
    }
    // Baseline: what a scan over every route costs for the same exact hits.
    const linear = requests[`exact hit, ${HOT} hosts`]!.slice(0, LINEAR_BATCH);
    batchOf.set(`${size}|exact hit, linear scan (baseline)`, LINEAR_BATCH);
    bench.add(`${size}|exact hit, linear scan (baseline)`, () => {
      for (const q of linear) {
        for (const r of routes) {
          if (r.host.kind === 'exact' && r.host.host === q.host) {
            sink++;
            break;
          }
        }
      }
    });
  }
  await bench.run();

  const perSecond = new Map<string, number>();
  const rows = bench.tasks.map((task) => {
    const [size, kind] = task.name.split('|') as [string, string];
    const r = task.result;
    const ops = r.state === 'completed' ? r.throughput.mean * batchOf.get(task.name)! : Number.NaN;
    perSecond.set(task.name, ops);
    return {
      hostnames: Number(size),
      lookup: kind,
      'lookups/s': Math.round(ops).toLocaleString('en-US'),
      'ns/lookup': (1e9 / ops).toFixed(1),
      '±%': r.state === 'completed' ? r.throughput.rme.toFixed(1) : r.state,
    };
  });
  console.log('Router.lookup (one listener; 3 routes per hostname)');
  console.table(rows);
  const kinds = [...new Set(bench.tasks.map((task) => task.name.split('|')[1]!))];
  const ratios = kinds.map((kind) => {
    const small = perSecond.get(`${SIZES[0]}|${kind}`)!;
    const large = perSecond.get(`${SIZES[SIZES.length - 1]}|${kind}`)!;
    return { lookup: kind, 'throughput 10k/10': (large / small).toFixed(2) };
  });
  console.log(
    'Throughput at 10,000 hostnames relative to 10: 1.00 = cost does not grow; a scan falls with the route count.',
  );
  console.table(ratios);
  if (sink < 0) console.log(sink);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runRouterBench();
}
