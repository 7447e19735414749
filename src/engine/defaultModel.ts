/**
 * Where the bundled default model lives: `models/default` in Loupe's package
 * root, found from this file whether it runs from source or from a bundle.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoupeError } from './errors';
import { JSON_KINDS, readJsonObject } from './untrustedJson';

export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        // Folders above the install are anyone's: a package.json there may be a pipe or huge.
        if (readJsonObject(manifest, JSON_KINDS.config).name === 'loupe') return dir;
      } catch (err) {
        if (!(err instanceof LoupeError)) throw err; // not ours; keep walking up
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new LoupeError(`cannot find Loupe's package folder above ${__dirname}`);
    dir = parent;
  }
}

export function defaultModelDir(): string {
  const dir = path.join(packageRoot(), 'models', 'default');
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    throw new LoupeError(
      `the bundled default model is missing from ${dir}; rebuild it with 'bash tools/default-model/build.sh' or pass --model DIR`,
    );
  }
  return dir;
}
