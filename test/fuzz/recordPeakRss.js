// Preloaded into the CLI under test (NODE_OPTIONS=--require): writes the
// process's peak resident memory in KiB to the file the fuzz runner names.
// The variable is removed at once so that processes the CLI starts do not
// overwrite the number.
//
// The peak is /proc's VmHWM, which belongs to this process's own address
// space: getrusage's maxRSS survives exec, so a child forked from a large
// test runner would report the runner's size instead of its own.
'use strict';
const fs = require('node:fs');

function peakKiB() {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // No /proc: fall back to getrusage below.
  }
  return process.resourceUsage().maxRSS;
}

const file = process.env.LOUPE_FUZZ_RSS_FILE;
delete process.env.LOUPE_FUZZ_RSS_FILE;
if (file) {
  process.on('exit', () => fs.writeFileSync(file, String(peakKiB())));
}
