/** Naming one token of the vocabulary: by its text (which must be exactly one token) or by id as `#123`. */
import { LoupeError } from '../errors';
import { HookedModel } from '../model';

export async function resolveToken(model: HookedModel, token: string | number): Promise<number> {
  const V = model.spec.dVocab;
  const id =
    typeof token === 'number'
      ? token
      : /^#\d+$/.test(token)
        ? Number(token.slice(1))
        : await tokenOfText(model, token);
  if (!Number.isInteger(id) || id < 0 || id >= V) {
    throw new LoupeError(`token id ${id} is not in the vocabulary (ids 0..${V - 1})`);
  }
  return id;
}

async function tokenOfText(model: HookedModel, text: string): Promise<number> {
  if (text.length === 0)
    throw new LoupeError('an empty string is not a token; give its text or its id as #123');
  const tokens = await model.tokenize(text, { prependBos: false });
  if (tokens.length !== 1) {
    const parts = tokens.map((t) => JSON.stringify(t.text)).join(', ');
    throw new LoupeError(
      `${JSON.stringify(text)} is not one token of this model's vocabulary: it encodes as ${tokens.length} tokens (${parts}); give one token (mind a leading space) or its id as #123`,
    );
  }
  return tokens[0].id;
}
