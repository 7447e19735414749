/** Corpora read a piece at a time: pieces that add up to the file, lines named by number. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CorpusDocument, readCorpus } from '../../src/engine/corpus';
import { tempDir } from './helpers';

async function all(source: string): Promise<CorpusDocument[]> {
  const docs: CorpusDocument[] = [];
  for await (const d of readCorpus(source)) docs.push(d);
  return docs;
}

describe('corpus', () => {
  it('reads a large text file as pieces cut after line breaks that add up to the file', async () => {
    const dir = tempDir();
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i} ✓`);
    const text = `${lines.join('\n')}\n`;
    const file = path.join(dir, 'big.txt');
    fs.writeFileSync(file, `\uFEFF${text}`);
    const docs = await all(file);
    assert.ok(docs.length > 1, `${docs.length} pieces`);
    assert.equal(docs.map((d) => d.text).join(''), text);
    assert.equal(docs[0].source, file);
    let line = 1;
    for (const d of docs) {
      assert.equal(d.source, line === 1 ? file : `${file}:${line}`);
      assert.ok(d.text.endsWith('\n'));
      line += d.text.split('\n').length - 1;
    }
  });

  it('numbers .jsonl lines from 1, CRLF or LF, blank lines counted', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'c.jsonl');
    fs.writeFileSync(file, '{"text": "a"}\r\n\r\n{"text": "b"}\n{"text": "c"}');
    const docs = await all(file);
    assert.deepEqual(
      docs.map((d) => [d.source, d.text]),
      [
        [`${file}:1`, 'a'],
        [`${file}:3`, 'b'],
        [`${file}:4`, 'c'],
      ],
    );
    fs.writeFileSync(file, '{"text": "a"}\n\n[]\n');
    await assert.rejects(all(file), new RegExp(`${file.replace(/[.]/g, '\\.')}:3: an array, not an object`));
  });
});
