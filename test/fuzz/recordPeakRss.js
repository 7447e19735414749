// Preloaded into the CLI under test (NODE_OPTIONS=--require): writes the
// process's peak resident memory in KiB to the file the fuzz runner names.
// The variable is removed at once so that processes the CLI starts do not
// overwrite the number.
'use strict';
const fs = require('node:fs');

const file = process.env.LOUPE_FUZZ_RSS_FILE;
delete process.env.LOUPE_FUZZ_RSS_FILE;
if (file) {
  process.on('exit', () => fs.writeFileSync(file, String(process.resourceUsage().maxRSS)));
}
