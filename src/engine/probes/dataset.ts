/**
 * What a probe is trained on: token windows as the model runs them, each from
 * a named document, and labelled examples that point into them (one position,
 * or several whose activations are averaged). The document is the unit of
 * the train/test split, so no document lends tokens to both sides.
 */
import { LoupeError } from '../errors';
import { seededUniform } from '../random';

export interface ProbeSequence {
  /** The document the window comes from (a file, `file.jsonl:LINE`, …). */
  readonly document: string;
  /** Token ids as the model runs them, BOS first where the model has one. */
  readonly ids: readonly number[];
}

export interface ProbeExample {
  readonly sequence: number;
  /** Positions in the sequence whose activations are averaged (one for a token). */
  readonly positions: readonly number[];
  readonly label: string;
  /** The token id at the example's last position: the word type of Hewitt & Liang's control task. */
  readonly tokenType: number;
}

export interface ProbeDataset {
  /** Where the labels came from, in words (a file, a regex over a corpus, the editor's semantic tokens). */
  readonly description: string;
  readonly sequences: readonly ProbeSequence[];
  readonly examples: readonly ProbeExample[];
}

/** Labels that name the absence of a concept; a binary probe's positive class is the other one. */
const NEGATIVE_LABELS = new Set(['other', 'none', 'false', '0', 'no', 'negative', 'random', 'o']);

/**
 * The dataset's labels in class order: sorted, with a label naming the
 * absence of the concept (`other`, `false`, `0`, …) first, so that for two
 * classes class 1, the one a binary probe scores, is the concept.
 */
export function labelOrder(labels: Iterable<string>): string[] {
  const all = [...new Set(labels)];
  const isNegative = (l: string): boolean => NEGATIVE_LABELS.has(l.toLowerCase());
  return all.sort((a, b) => Number(isNegative(b)) - Number(isNegative(a)) || (a < b ? -1 : a > b ? 1 : 0));
}

export interface DocumentSplit {
  readonly train: ReadonlySet<string>;
  readonly test: ReadonlySet<string>;
}

/** A seeded split of the dataset's documents: `testFraction` of them (at least one) held out. */
export function splitDocuments(dataset: ProbeDataset, testFraction: number, seed: number): DocumentSplit {
  if (!(testFraction > 0 && testFraction < 1)) {
    throw new LoupeError(`the held-out fraction must be between 0 and 1, not ${testFraction}`);
  }
  const used = new Set(dataset.examples.map((e) => dataset.sequences[e.sequence].document));
  const documents = [...used];
  if (documents.length < 2) {
    throw new LoupeError(
      `${dataset.description}: the labelled examples come from ${documents.length} document${documents.length === 1 ? '' : 's'}; ` +
        'probes are split by document so no text is on both sides, which needs at least 2 (give more lines, files or a folder)',
    );
  }
  const rand = seededUniform(seed);
  for (let i = documents.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [documents[i], documents[j]] = [documents[j], documents[i]];
  }
  const nTest = Math.min(documents.length - 1, Math.max(1, Math.round(testFraction * documents.length)));
  return { test: new Set(documents.slice(0, nTest)), train: new Set(documents.slice(nTest)) };
}
