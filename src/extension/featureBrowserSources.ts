/**
 * Where a dashboard context came from, on this machine. A context names its
 * document relative to the corpus the database was built from
 * (`FeatureDbMeta.corpus`): a path inside a corpus folder, the file's own
 * name for a single-file corpus, or `name.jsonl:LINE` for a JSONL record.
 * The corpus path is recorded as it was given to the build, so a relative
 * one is looked for under each of `bases` (the workspace folders, the SAE's
 * folder) in turn. Free of `vscode`, so the tests call it directly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type ContextSource =
  /** A text file: open it at the context's span. */
  | { readonly kind: 'file'; readonly file: string }
  /** A JSONL record: the span is inside its "text" field, not the file; `file` when the JSONL file is here. */
  | { readonly kind: 'record'; readonly name: string; readonly line: number; readonly file: string | null }
  /** The corpus (or the file in it) is not on this machine, or not where the build saw it. */
  | { readonly kind: 'missing' };

export function resolveContextSource(
  corpus: string,
  source: string,
  bases: readonly string[],
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
    const inside = path.relative(folder, file);
    if (inside === '' || inside === '..' || inside.startsWith(`..${path.sep}`) || path.isAbsolute(inside))
      continue;
    if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
    return record
      ? { kind: 'record', name: record[1], line: Number(record[2]), file }
      : { kind: 'file', file };
  }
  return record
    ? { kind: 'record', name: record[1], line: Number(record[2]), file: null }
    : { kind: 'missing' };
}
