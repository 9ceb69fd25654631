// One kakehi HTTPS listener in front of an echo backend, with a certificate from
// a fresh lab CA: what third-party suites (testssl, h2spec) are pointed at.

import { type Backend, echoBackend } from './backends.js';
import { issueCert, makeCa, type TestCa } from './certs.js';
import { type Kakehi, startKakehi } from './kakehi-process.js';

export interface HttpsEcho {
  kakehi: Kakehi;
  backend: Backend;
  /** The CA that issued the listener's certificate; its dir is the test's scratch space. */
  ca: TestCa;
  close(): Promise<void>;
}

/** `name` is the certificate's one name; the listener is 127.0.0.1 on a free port. */
export async function startHttpsEcho(name: string): Promise<HttpsEcho> {
  const ca = makeCa({ keyType: 'ec' });
  const leaf = issueCert(ca, [name], { keyType: 'ec' });
  const backend = await echoBackend('b');
  const kakehi = await startKakehi({
    listeners: [{ address: '127.0.0.1:0', protocol: 'https' }],
    clusters: [{ id: 'app', backends: [{ id: 'b', address: backend.address }] }],
    frontends: [{ hostname: '*', cluster: 'app' }],
    certificates: [
      {
        listener: '127.0.0.1:0',
        certificate_file: leaf.fullchainPath,
        key_file: leaf.keyPath,
        default: true,
      },
    ],
    access_log: 'off',
  }).catch(async (err: unknown) => {
    await backend.close();
    throw err;
  });
  return {
    kakehi,
    backend,
    ca,
    close: async () => {
      await kakehi.stop();
      await backend.close();
    },
  };
}
