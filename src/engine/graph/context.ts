/**
 * What every part of the graph (embedding, norms, attention, MLP,
 * unembedding) shares while one variant is built: the builder, the model's
 * spec, the engine weights, and the hook points the variant reads or edits.
 */
import { ModelSpec } from '../families/spec';
import { ExternalTensor, GraphBuilder } from './builder';

export interface GraphVariant {
  /** Hook names to return. */
  readonly outputs: ReadonlySet<string>;
  /** Hook names that take an edit. */
  readonly edits: ReadonlySet<string>;
  /**
   * Whether the graph computes logits: at every position, or ('rows') only at
   * the rows of [batch · pos] fed as LOGIT_ROWS, one prediction per text
   * without the [batch, pos, d_vocab] of a 256k vocabulary. Without them it
   * stops after the last layer a hook or edit needs: reading one early layer
   * then skips the later blocks and the unembedding, often the largest matmul
   * of a small model.
   */
  readonly logits: boolean | 'rows';
}

export function editInputNames(hook: string): { mul: string; add: string } {
  return { mul: `edit:${hook}:mul`, add: `edit:${hook}:add` };
}

export class GraphContext {
  readonly g: GraphBuilder;
  /** Hook name → graph output holding its value (hooks with equal values share one). */
  readonly hookOutputs = new Map<string, string>();

  constructor(
    readonly spec: ModelSpec,
    private readonly weights: ReadonlyMap<string, ExternalTensor>,
    weightsFile: string,
    private readonly variant: GraphVariant,
  ) {
    this.g = new GraphBuilder(weightsFile);
  }

  /** Whether the variant reads or edits a hook (some hooks cost extra work only then). */
  wanted(name: string): boolean {
    return this.variant.outputs.has(name) || this.variant.edits.has(name);
  }

  w(name: string): string {
    const ext = this.weights.get(name);
    if (!ext) throw new Error(`compiled weights lack '${name}'`);
    return this.g.weight(name, ext);
  }

  hasW(name: string): boolean {
    return this.weights.has(name);
  }

  /** Applies an edit and records an output at a hook point; returns the (possibly edited) value. */
  hook(name: string, value: string): string {
    const g = this.g;
    let v = value;
    if (this.variant.edits.has(name)) {
      const e = editInputNames(name);
      g.input(e.mul, 'float');
      g.input(e.add, 'float');
      v = g.op('Add', [g.op('Mul', [v, e.mul]), e.add]);
    }
    if (this.variant.outputs.has(name)) {
      this.hookOutputs.set(name, v);
      g.output(v);
    }
    return v;
  }

  /** x @ W (+ b when the model has that bias). */
  linear(x: string, W: string, b?: string): string {
    const y = this.g.op('MatMul', [x, this.w(W)]);
    return b && this.hasW(b) ? this.g.op('Add', [y, this.w(b)]) : y;
  }

  // Constants are made where used (the builder shares repeats), so no graph carries unused ones.
  lastAxis(): string {
    return this.g.constI64([-1]);
  }
}
