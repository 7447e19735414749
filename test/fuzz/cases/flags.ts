import type { FuzzCase } from '../case';
import { DEFAULT_SAE } from '../caseFiles';

export const cases: FuzzCase[] = [
  {
    name: 'flags/top-not-a-number',
    area: 'flags',
    setup: () => ['feature', '--sae', DEFAULT_SAE, '--list', 'index', '--top', 'abc'],
    expect: { error: /--top must be a positive integer/ },
  },
];
