// A test file named on the command line runs alone; `npx mocha` alone runs every
// suite. (Mocha adds files named on the command line to the config's `spec`
// rather than replacing it.)
const named = process.argv.slice(2).some((arg) => arg.endsWith('.test.ts'));

module.exports = {
  require: ['tsx/cjs'],
  spec: named ? [] : ['test/unit/**/*.test.ts', 'test/fuzz/**/*.test.ts'],
  timeout: 120000,
  reporter: 'spec',
};
