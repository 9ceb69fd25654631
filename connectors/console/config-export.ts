// The running state written as a configuration file's objects (listeners,
// clusters with their backends nested, frontends), from get_state's changes.
// Certificates cannot be written: a config file names key files, and the proxy
// never gives a key back; each is left as a comment naming it instead.

import { stringify } from 'yaml';
import type { StateChange } from '../../src/command/protocol.js';

export function configFromChanges(generation: number, changes: readonly StateChange[]): string {
  const listeners: unknown[] = [];
  const clusters = new Map<string, Record<string, unknown> & { backends: unknown[] }>();
  const frontends: unknown[] = [];
  const certificates: string[] = [];
  for (const c of changes) {
    switch (c.op) {
      case 'put_listener':
        listeners.push(c.listener);
        break;
      case 'put_cluster':
        clusters.set(c.cluster.id, { ...c.cluster, backends: [] });
        break;
      case 'put_backend': {
        const { cluster, ...nested } = c.backend;
        // get_state lists each cluster before its backends.
        clusters.get(cluster)?.backends.push(nested);
        break;
      }
      case 'put_frontend':
        frontends.push(c.frontend);
        break;
      case 'put_certificate':
        certificates.push(
          `#   listener ${c.certificate.listener}: ${c.certificate.names?.join(', ') ?? '(names from the certificate)'}`,
        );
        break;
      default:
        break;
    }
  }
  const head = [
    `# kakehi configuration objects exported by kakehi console at generation ${generation}.`,
    '# Settings (workers, command_socket, logs, …) are not part of the state: keep your own.',
  ];
  if (certificates.length > 0) {
    head.push(
      '# Certificates are not exported (the proxy never gives a key back); add certificate_file',
      '# and key_file entries for:',
      ...certificates,
    );
  }
  return `${head.join('\n')}\n${stringify({ listeners, clusters: [...clusters.values()], frontends })}`;
}
