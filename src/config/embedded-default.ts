// What `kakehi run` serves with no configuration file: one listener on
// loopback whose every answer is a page saying how to add routes.

import { DEFAULT_LISTEN_ADDRESS } from '../defaults.js';
import { type Config, configFromObject } from './load-config.js';

const WELCOME = `<!doctype html>
<html><head><meta charset="utf-8"><title>kakehi is running</title></head>
<body>
<h1>kakehi is running</h1>
<p>No route matches this request yet: this is the embedded default configuration.</p>
<p>To route traffic, write a configuration file (start from <code>config.example.yaml</code>),
check it with <code>kakehi validate -c config.yaml</code> and run <code>kakehi run -c config.yaml</code>.</p>
<p>Request id: %REQUEST_ID</p>
</body></html>
`;

export function embeddedDefault(): Config {
  return configFromObject(
    { listeners: [{ address: DEFAULT_LISTEN_ADDRESS, answers: { '404': WELCOME } }] },
    'embedded default',
  );
}
