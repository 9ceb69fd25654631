// `npm run bench:micro`: every micro-benchmark, one after the other.
import { runHeaderBench } from './micro-headers.js';
import { runMetricsBench } from './micro-metrics.js';
import { runRouterBench } from './micro-router.js';

await runRouterBench();
await runHeaderBench();
await runMetricsBench();
