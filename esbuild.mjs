// Bundles into dist/: the extension host, the engine process it forks, the
// CLI (Node, CommonJS), and each webview (browser, one IIFE plus its CSS).
// Native addons (onnxruntime-node, tokenizers) stay external: they load from node_modules.
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const node = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external: ['vscode', 'onnxruntime-node', 'tokenizers'],
  logLevel: 'warning',
};
const webview = {
  bundle: true,
  platform: 'browser',
  target: 'chrome120',
  format: 'iife',
  minify: true,
  sourcemap: true,
  logLevel: 'warning',
};

const builds = [
  { ...node, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js' },
  { ...node, entryPoints: ['src/engine/host/worker.ts'], outfile: 'dist/engineWorker.js' },
  { ...node, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js' },
  {
    ...webview,
    // Each entry's CSS imports (uPlot's stylesheet included) become ENTRY.css beside ENTRY.js.
    entryPoints: {
      inspector: 'src/webview/inspector/main.ts',
      featureBrowser: 'src/webview/featureBrowser/main.ts',
      clusterMap: 'src/webview/clusterMap/main.ts',
      causal: 'src/webview/causal/main.ts',
      lensGrid: 'src/webview/lensGrid/main.ts',
      heads: 'src/webview/heads/main.ts',
    },
    outdir: 'dist/webview',
  },
];

if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
}
