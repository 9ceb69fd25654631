// `kakehi hash-password`: the scrypt hash a frontend's basic_auth takes, so an
// operator never writes a password into a config file or a change. The
// password is read from standard input (its first line) or, on a terminal,
// typed twice without echo; it is never an argument, which ps would show.

import { parseScryptHash } from '../model/frontend-rules.js';
import { hashPassword } from '../proxy/basic-auth.js';
import { parseArgs } from './args.js';
import { EXIT } from './exit-codes.js';

export const HASH_PASSWORD_HELP = `Usage: kakehi hash-password [--cost LN]

Prints the scrypt hash of a password, for a frontend's basic_auth users
(password_hash). The password is the first line of standard input, or, on a
terminal, typed twice without echo. It is never taken as an argument.

  echo -n 's3cret' | kakehi hash-password

Options:
      --cost LN   scrypt cost: N = 2^LN, from 10 to 20 (default 15: 32 MiB and
                  tens of milliseconds per check; kakehi remembers successes)
  -h, --help      this help
`;

/** Longest password read: more is a mistake (a file piped in), not a password. */
const MAX_PASSWORD = 1024;

export async function runHashPassword(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, { cost: { value: true }, help: { value: false, short: 'h' } });
  if ('error' in parsed || parsed.positional.length > 0) {
    const why =
      'error' in parsed
        ? parsed.error
        : `unexpected argument "${parsed.positional[0]}" (the password is read from stdin)`;
    process.stderr.write(`kakehi hash-password: ${why}\n\n${HASH_PASSWORD_HELP}`);
    return EXIT.USAGE;
  }
  if (parsed.flags.has('help')) {
    process.stdout.write(HASH_PASSWORD_HELP);
    return EXIT.OK;
  }
  const costText = parsed.flags.get('cost');
  const ln = costText === undefined ? 15 : Number(costText);
  if (!Number.isInteger(ln) || ln < 10 || ln > 20) {
    process.stderr.write(
      `kakehi hash-password: --cost must be a whole number from 10 to 20 (got ${String(costText)})\n`,
    );
    return EXIT.USAGE;
  }
  const password = process.stdin.isTTY ? await promptTwice() : await firstLine();
  if (password === undefined) return EXIT.FAILURE;
  if (password === '') {
    process.stderr.write('kakehi hash-password: the password is empty\n');
    return EXIT.FAILURE;
  }
  if (password.length > MAX_PASSWORD) {
    process.stderr.write(`kakehi hash-password: the password is longer than ${MAX_PASSWORD} characters\n`);
    return EXIT.FAILURE;
  }
  const hash = await hashPassword(password, ln);
  // The same check the proxy makes: what is printed is what it accepts.
  if (typeof parseScryptHash(hash) === 'string') return EXIT.FAILURE;
  process.stdout.write(`${hash}\n`);
  return EXIT.OK;
}

async function firstLine(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += (chunk as Buffer).toString('utf8');
    if (text.includes('\n') || text.length > MAX_PASSWORD) break;
  }
  const nl = text.indexOf('\n');
  const line = nl < 0 ? text : text.slice(0, nl);
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

async function promptTwice(): Promise<string | undefined> {
  const a = await prompt('Password: ');
  const b = await prompt('Again: ');
  if (a !== b) {
    process.stderr.write('kakehi hash-password: the two passwords differ\n');
    return undefined;
  }
  return a;
}

/** One line typed on the terminal, not echoed. */
function prompt(question: string): Promise<string> {
  process.stderr.write(question);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve) => {
    let typed = '';
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          stdin.off('data', onData);
          stdin.setRawMode(false);
          stdin.pause();
          process.stderr.write('\n');
          resolve(typed);
          return;
        }
        if (ch === '\u0003') process.exit(EXIT.FAILURE); // Ctrl-C in raw mode arrives as a byte
        if (ch === '\u007f') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}
