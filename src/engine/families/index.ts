/** The model families Loupe runs, looked up by a config's `model_type`. */
import { LoupeError } from '../errors';
import { gemma } from './gemma';
import { gemma2 } from './gemma2';
import { gemma3 } from './gemma3';
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
];

export const SUPPORTED_MODEL_TYPES: readonly string[] = FAMILIES.flatMap((f) => f.modelTypes);

export function familyFor(modelType: unknown, configFile: string): FamilyDefinition {
  if (typeof modelType !== 'string') {
    throw new LoupeError(`${configFile}: 'model_type' is missing; is this a Hugging Face config.json?`);
  }
  const family = FAMILIES.find((f) => f.modelTypes.includes(modelType));
  if (modelType === 'gemma3') {
    // The multimodal Gemma 3 (4B and up) nests its text model under text_config, with its own tensor names.
    throw new LoupeError(
      `${configFile}: model_type 'gemma3' is the multimodal Gemma 3, which Loupe does not open; use a text-only checkpoint (model_type gemma3_text, such as gemma-3-270m or gemma-3-1b)`,
    );
  }
  if (!family) {
    throw new LoupeError(
      `${configFile}: model_type '${modelType}' is not supported; Loupe runs ${SUPPORTED_MODEL_TYPES.join(', ')}`,
    );
  }
  return family;
}
