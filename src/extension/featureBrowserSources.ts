/**
 * Where a dashboard context came from, on this machine. A context names its
 * document relative to the corpus the database was built from
 * (`FeatureDbMeta.corpus`): a path inside a corpus folder, the file's own
 * name for a single-file corpus, or `name.jsonl:LINE` for a JSONL record.
 * The corpus path is recorded as it was given to the build, so a relative
 * one is looked for under each of `bases` (the workspace folders, the SAE's
 * folder) in turn. The database is a file anyone could have written, so a
 * file is opened only inside `allowed` (the workspace folders and the
 * database's own folder), compared after resolving symlinks: a corpus of `/`
 * or a source that climbs out with `..` names a file, but it is not opened.
 * Free of `vscode`, so the tests call it directly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type ContextSource =
  /** A text file: open it at the context's span. */
  | { readonly kind: 'file'; readonly file: string }
  /** A JSONL record: the span is inside its "text" field, not the file; `file` when the JSONL file is here. */
  | { readonly kind: 'record'; readonly name: string; readonly line: number; readonly file: string | null }
  /** The file is here but outside the workspace and the database's folder: said, not opened. */
  | { readonly kind: 'outside'; readonly file: string }
  /** The corpus (or the file in it) is not on this machine, or not where the build saw it. */
  | { readonly kind: 'missing' };

export function resolveContextSource(
  corpus: string,
  source: string,
  bases: readonly string[],
  allowed: readonly string[],
): ContextSource {
  const record = /^(.*\.jsonl):(\d+)$/i.exec(source);
  const roots = path.isAbsolute(corpus) ? [corpus] : bases.map((b) => path.resolve(b, corpus));
  for (const root of roots) {
    const stat = fs.statSync(root, { throwIfNoEntry: false });
    if (!stat) continue;
    // A single-file corpus names its file; a folder corpus names paths inside the folder.
    const folder = stat.isDirectory() ? root : path.dirname(root);
    const file = path.resolve(folder, record ? record[1] : source);
    // A context names a document inside its corpus; anything else is not where it came from.
    if (!isBelow(folder, file)) continue;
    if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
    if (record) return { kind: 'record', name: record[1], line: Number(record[2]), file };
    return allowed.some((folder) => isInsideFolder(file, folder))
      ? { kind: 'file', file }
      : { kind: 'outside', file };
  }
  return record
    ? { kind: 'record', name: record[1], line: Number(record[2]), file: null }
    : { kind: 'missing' };
}

/** Whether `file` lies inside `folder` once both have their symlinks resolved; false when either is not there. */
export function isInsideFolder(file: string, folder: string): boolean {
  try {
    return isBelow(fs.realpathSync(folder), fs.realpathSync(file));
  } catch {
    return false;
  }
}

function isBelow(folder: string, file: string): boolean {
  const inside = path.relative(folder, file);
  return !(inside === '' || inside === '..' || inside.startsWith(`..${path.sep}`) || path.isAbsolute(inside));
}
