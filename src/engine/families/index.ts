/** The model families Loupe runs, looked up by a config's `model_type`. */
import { LoupeError } from '../errors';
import { gemma } from './gemma';
import { gemma2 } from './gemma2';
import { gemma3, gemma3Multimodal } from './gemma3';
import { gpt2 } from './gpt2';
import { llama } from './llama';
import { mistral } from './mistral';
import { neox } from './neox';
import { phi3 } from './phi3';
import { qwen3 } from './qwen3';
import { FamilyDefinition } from './spec';

const FAMILIES: readonly FamilyDefinition[] = [
  gpt2,
  neox,
  llama,
  mistral,
  qwen3,
  phi3,
  gemma,
  gemma2,
  gemma3,
  gemma3Multimodal,
];

export const SUPPORTED_MODEL_TYPES: readonly string[] = FAMILIES.flatMap((f) => f.modelTypes);

export function familyFor(modelType: unknown, configFile: string): FamilyDefinition {
  if (typeof modelType !== 'string') {
    throw new LoupeError(`${configFile}: 'model_type' is missing; is this a Hugging Face config.json?`);
  }
  const family = FAMILIES.find((f) => f.modelTypes.includes(modelType));
  if (!family) {
    throw new LoupeError(
      `${configFile}: model_type '${modelType}' is not supported; Loupe runs ${SUPPORTED_MODEL_TYPES.join(', ')}`,
    );
  }
  return family;
}
