// kakehi's version, read once from package.json (the one place it is written).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// Compiled to dist/src/version.js: package.json is three levels up.
const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as {
  version: string;
};

export const VERSION: string = pkg.version;
