// PEM splitting for certificate and key files. Files arrive from operators and from
// watched directories that may be read while still being written, so a block that
// starts but never ends must be reported, not silently dropped.

export interface PemBlock {
  /** The label: 'CERTIFICATE', 'PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY', … */
  type: string;
  /** The block from its BEGIN line to its END line, with a final '\n'. */
  pem: string;
}

const BEGIN = /^-----BEGIN ([A-Z0-9 ]+)-----$/;
const END = /^-----END ([A-Z0-9 ]+)-----$/;

/**
 * Complete blocks in order. `incomplete` is true when a block starts but does not end
 * with its own label, when an END line has no BEGIN (the head of the file is missing),
 * or when a line looks like a cut-off BEGIN/END marker. Other text between blocks
 * (comments, OpenSSL "Bag Attributes") is ignored.
 */
export function splitPem(text: string): { blocks: PemBlock[]; incomplete: boolean } {
  const blocks: PemBlock[] = [];
  let incomplete = false;
  let open: { type: string; lines: string[] } | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const begin = BEGIN.exec(line);
    const end = begin ? null : END.exec(line);
    if (begin) {
      // A BEGIN inside an open block means the open one was cut short.
      if (open) incomplete = true;
      open = { type: begin[1] as string, lines: [line] };
    } else if (end) {
      if (open && open.type === end[1]) {
        open.lines.push(line);
        blocks.push({ type: open.type, pem: `${open.lines.join('\n')}\n` });
      } else {
        incomplete = true;
      }
      open = undefined;
    } else if (open) {
      if (line !== '') open.lines.push(line);
    } else if (line.startsWith('-----')) {
      incomplete = true;
    }
  }
  if (open) incomplete = true;
  return { blocks, incomplete };
}
