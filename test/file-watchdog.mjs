// Preloaded by test/run.mjs into every test file's process (node --test passes its
// --import on to them), in place of --test-force-exit.
//
// Why not --test-force-exit: in Node 20 it calls process.exit() as soon as the
// file's report stream closes, while the report is still on its way to node --test
// through the stdout pipe. When node --test reads slowly (a loaded machine) the
// tail of the report is dropped, and the file still exits 0: its last tests vanish
// from the counts and the run passes (nodejs/node#64833).
//
// What it kept, and this keeps: a file whose tests are over but whose process does
// not exit (a loop or a server a failed test left running) must not stall the run.
// Here such a process is stopped once its report is written, and fails the file,
// naming what held it open. A file that exits some other way than node:test ending
// naturally (a process.exit() in the code under test) fails too, since its report
// may be cut short.
if (process.env.NODE_TEST_CONTEXT) {
  const { after } = await import('node:test');
  const file = process.argv[1];
  // How long a file's process may live on after its last test. Files exit well
  // within a second of it; the variable lets the runner's self-test be quick.
  const graceMs = Number(process.env.KAKEHI_TEST_EXIT_GRACE_MS ?? 30_000);
  let testsDone = false;
  let ended = false; // the event loop emptied: node:test wrote its summary itself
  let stopping = false;
  let timer;

  // A global after() hook runs once every test of the file has finished.
  after(() => {
    testsDone = true;
    clearTimeout(timer);
    timer = setTimeout(check, graceMs).unref();
  });

  function check() {
    // Report bytes still queued on the pipe: node --test is slow to read, not this
    // file stuck; exiting now would drop them, and the run's budget bounds the wait.
    if (process.stdout.writableLength > 0) {
      timer = setTimeout(check, 1000).unref();
      return;
    }
    stopping = true;
    process.exitCode = 1;
    process.stderr.write(
      `${file}: its tests ended ${Math.round(graceMs / 1000)} s ago but its process is still running, ` +
        `held by ${process.getActiveResourcesInfo().join(', ')}; stopping it (the file fails)\n`,
    );
    // Exit once whatever the report still writes has reached the pipe.
    process.stdout.write('', () => process.exit());
  }

  process.on('beforeExit', () => {
    ended = true;
  });
  process.on('exit', (code) => {
    if (stopping || ended || code !== 0) return;
    process.exitCode = 1;
    process.stderr.write(
      `${file}: process.exit() was called ${testsDone ? 'after' : 'before'} its tests ended, ` +
        'so its report may be cut short; the file fails\n',
    );
  });
}
