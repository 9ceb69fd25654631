// The PKI connector's HTTP face: /metrics (prom-client text), /healthz (200 when
// connected and the last reconcile succeeded, 503 with the reason otherwise) and
// /status (JSON: directories, pairs, their state and last error).

import { json, metricsRoute, type Routes, text } from '../shared/http-face.js';
import type { PkiConnector } from './connector.js';

export function pkiRoutes(connector: PkiConnector): Routes {
  return {
    '/status': () => json(200, connector.status()),
    '/metrics': metricsRoute(connector.metrics.registry),
    '/healthz': () => {
      const h = connector.healthy;
      return text(h.ok ? 200 : 503, h.reason);
    },
  };
}
