/**
 * Bad config.json files for every family: each is a fixture checkpoint whose
 * config has one field made wrong (zero or negative epsilons, bases, caps and
 * windows, sizes that disagree with each other or with the weights, counts
 * far past any model, strings for numbers, scaling types the engine does not
 * run, fields it refuses). Each must give one line naming config.json and the
 * field, before anything large is allocated.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FuzzCase } from '../case';
import { FIXTURES } from '../caseFiles';

type Config = Record<string, unknown>;

/** A copy of a fixture checkpoint (without its reference outputs) with `edit` applied to its config. */
function brokenModel(fixture: string, edit: (config: Config) => void): (dir: string) => string[] {
  return (dir) => {
    const from = path.join(FIXTURES, fixture);
    const model = path.join(dir, 'model');
    fs.mkdirSync(model);
    for (const f of fs.readdirSync(from)) {
      if (!f.startsWith('reference')) fs.copyFileSync(path.join(from, f), path.join(model, f));
    }
    const config = JSON.parse(fs.readFileSync(path.join(from, 'config.json'), 'utf8')) as Config;
    edit(config);
    fs.writeFileSync(path.join(model, 'config.json'), JSON.stringify(config, null, 2));
    return ['hooks', '--model', model];
  };
}

/**
 * One case: `fixture`'s config with `key` set to `value` (undefined deletes it);
 * the error starts with config.json unless the weights are what it names.
 */
function field(
  fixture: string,
  key: string,
  value: unknown,
  error: RegExp,
  what?: string,
  namesConfigFirst = true,
): FuzzCase {
  return {
    name: `config/${fixture}-${what ?? key.replace(/_/g, '-')}`,
    area: 'config',
    setup: brokenModel(fixture, (c) => {
      if (value === undefined) delete c[key];
      else c[key] = value;
    }),
    expect: { error: namesConfigFirst ? new RegExp(`config\\.json.*${error.source}`) : error },
  };
}

export const cases: FuzzCase[] = [
  // GPT-2
  field('gpt2', 'layer_norm_epsilon', 0, /'layer_norm_epsilon' must be a number > 0/),
  field('gpt2', 'n_layer', 1e9, /'n_layer' must be at most 1024/, 'n-layer-1e9'),
  field('gpt2', 'n_layer', 5, /'n_layer' is 5 but the weights hold 2 layers/, 'n-layer-past-weights'),
  field('gpt2', 'n_head', '4', /'n_head' must be a positive integer, got "4"/, 'n-head-string'),
  field('gpt2', 'n_head', 5, /'n_embd' 32 is not divisible by 'n_head' 5/, 'n-head-not-dividing'),
  field('gpt2', 'add_cross_attention', true, /'add_cross_attention' is true/),
  field('gpt2', 'vocab_size', 1 << 25, /'vocab_size' must be at most 16777216/, 'vocab-huge'),
  // A size the weights do not have: the tensor is named, and what config.json implies for it.
  field(
    'gpt2',
    'vocab_size',
    1_000_000,
    /wte\.weight' has shape \[300, 32\] but config\.json implies \[1000000, 32\]/,
    'vocab-without-weights',
    false,
  ),
  field('gpt2', 'activation_function', 'swiglu', /'activation_function' is 'swiglu', which is not supported/),
  // GPT-NeoX
  field('neox-parallel', 'rope_scaling', { type: 'linear', factor: 2 }, /'rope_scaling'.*GPT-NeoX/),
  field(
    'neox-parallel',
    'rotary_pct',
    1.5,
    /'rotary_pct' must be a number in \(0, 1\]/,
    'rotary-pct-above-one',
  ),
  field('neox-parallel', 'rotary_pct', 0, /'rotary_pct' must be a number in \(0, 1\]/, 'rotary-pct-zero'),
  field('neox-parallel', 'layer_norm_eps', -1e-5, /'layer_norm_eps' must be a number > 0/),
  field('neox-parallel', 'rotary_emb_base', 0, /'rotary_emb_base' must be a number > 0/),
  field('neox-sequential', 'num_hidden_layers', 1.5, /'num_hidden_layers' must be a positive integer/),
  // Llama, Llama 3.x
  field('llama-gqa', 'rms_norm_eps', 0, /'rms_norm_eps' must be a number > 0/),
  field('llama-gqa', 'rope_theta', -10000, /'rope_theta' must be a number > 0/),
  field(
    'llama-gqa',
    'rope_scaling',
    { rope_type: 'dynamic', factor: 2 },
    /'rope_scaling' type 'dynamic' is not supported/,
    'rope-dynamic',
  ),
  field(
    'llama-gqa',
    'rope_scaling',
    'linear',
    /'rope_scaling' must be an object or null/,
    'rope-scaling-string',
  ),
  field(
    'llama-gqa',
    'num_key_value_heads',
    3,
    /'num_attention_heads' \d+ is not a multiple of 'num_key_value_heads' 3/,
  ),
  field('llama-gqa', 'head_dim', 0, /'head_dim' must be a positive integer/, 'head-dim-zero'),
  field(
    'llama-gqa',
    'head_dim',
    7,
    /q_proj\.weight' has shape .* but config\.json implies/,
    'head-dim-inconsistent',
    false,
  ),
  field('llama-gqa', 'partial_rotary_factor', 0.5, /'partial_rotary_factor' is 0\.5/),
  field(
    'llama-gqa',
    'rope_parameters',
    { rope_type: 'default', rope_theta: 500000 },
    /'rope_parameters' is \{.*\}, which is not read/,
  ),
  field(
    'neox-parallel',
    'rope_parameters',
    { rope_theta: 10000 },
    /'rope_parameters' is \{.*\}, which is not read/,
  ),
  field('llama-gqa', 'model_type', undefined, /'model_type' is missing/, 'model-type-missing'),
  {
    name: 'config/llama3-rope-factor-zero',
    area: 'config',
    setup: brokenModel('llama3', (c) => {
      (c.rope_scaling as Config).factor = 0;
    }),
    expect: { error: /config\.json.*'rope_scaling\.factor' must be a number > 0/ },
  },
  {
    name: 'config/llama3-rope-original-max-missing',
    area: 'config',
    setup: brokenModel('llama3', (c) => {
      delete (c.rope_scaling as Config).original_max_position_embeddings;
    }),
    expect: { error: /config\.json.*'rope_scaling\.original_max_position_embeddings' is missing/ },
  },
  {
    name: 'config/llama3-rope-high-below-low',
    area: 'config',
    setup: brokenModel('llama3', (c) => {
      (c.rope_scaling as Config).high_freq_factor = 0.5;
    }),
    expect: {
      error: /config\.json.*'rope_scaling\.high_freq_factor' \(0\.5\) must be larger than 'low_freq_factor'/,
    },
  },
  // Qwen2.5, Qwen3
  field('qwen2.5', 'use_sliding_window', 'yes', /'use_sliding_window' must be true or false/),
  {
    name: 'config/qwen2.5-negative-window',
    area: 'config',
    setup: brokenModel('qwen2.5', (c) => {
      c.use_sliding_window = true;
      c.sliding_window = -4;
    }),
    expect: { error: /config\.json.*'sliding_window' must be a positive integer, got -4/ },
  },
  field('qwen3', 'num_attention_heads', 0, /'num_attention_heads' must be a positive integer/),
  field(
    'qwen3',
    'rope_scaling',
    { rope_type: 'yarn', factor: 4 },
    /'rope_scaling' type 'yarn' is not supported/,
    'rope-yarn',
  ),
  // Mistral, Phi-3
  field('mistral', 'sliding_window', 0, /'sliding_window' must be a positive integer, got 0/, 'window-zero'),
  field(
    'mistral',
    'sliding_window',
    2.5,
    /'sliding_window' must be a positive integer, got 2\.5/,
    'window-fraction',
  ),
  field(
    'phi3',
    'rope_scaling',
    { type: 'longrope', long_factor: [1], short_factor: [1] },
    /'rope_scaling' type 'longrope' is not supported/,
    'rope-longrope',
  ),
  field('phi3', 'partial_rotary_factor', 0, /'partial_rotary_factor' must be a number in \(0, 1\]/),
  field('phi3', 'sliding_window', -1, /'sliding_window' must be a positive integer/, 'window-negative'),
  // Gemma, Gemma 2, Gemma 3
  field('gemma', 'hidden_activation', 'tanh', /'hidden_activation' is 'tanh', which is not supported/),
  field('gemma', 'rms_norm_eps', '1e-6', /'rms_norm_eps' must be a number, got "1e-6"/, 'eps-string'),
  field('gemma2', 'attn_logit_softcapping', 0, /'attn_logit_softcapping' must be a number > 0/),
  field('gemma2', 'final_logit_softcapping', -30, /'final_logit_softcapping' must be a number > 0/),
  field('gemma2', 'query_pre_attn_scalar', 0, /'query_pre_attn_scalar' must be a number > 0/),
  field(
    'gemma2',
    'layer_types',
    ['sliding_attention'],
    /'layer_types' must be a list of 2 entries/,
    'layer-types-short',
  ),
  field('gemma2', 'sliding_window', -4096, /'sliding_window' must be a positive integer/, 'window-negative'),
  field(
    'gemma3',
    'layer_types',
    ['sliding_attention', 'local', 'full_attention'],
    /'layer_types' holds "local"/,
    'layer-types-unknown',
  ),
  field('gemma3', 'rope_local_base_freq', 0, /'rope_local_base_freq' must be a number > 0/),
  field(
    'gemma3',
    'rope_scaling',
    { rope_type: 'yarn', factor: 8 },
    /'rope_scaling' type 'yarn' is not supported/,
    'rope-yarn',
  ),
  field('gemma3', 'use_bidirectional_attention', true, /'use_bidirectional_attention' is true/),
  field('gemma3', 'model_type', 'gemma3', /'text_config' is missing/, 'multimodal-without-text-config'),
  {
    name: 'config/gemma3-multimodal-text-eps',
    area: 'config',
    setup: brokenModel('gemma3', (c) => {
      const text = { ...c, rms_norm_eps: 0 };
      for (const k of Object.keys(c)) delete c[k];
      Object.assign(c, { model_type: 'gemma3', text_config: text });
    }),
    expect: { error: /config\.json.*'text_config\.rms_norm_eps' must be a number > 0/ },
  },
  field(
    'gemma3-linear',
    'sliding_window_pattern',
    0,
    /'sliding_window_pattern' must be a positive integer/,
    'window-pattern-zero',
  ),
];
