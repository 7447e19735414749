/**
 * One transcoder of a set run on a block of MLP inputs, in onnxruntime: the
 * features (`pre = x·W_encᵀ + b_enc`, then ReLU, JumpReLU or circuit-tracer's
 * TopK, which keeps the k largest as they are) and the predicted MLP output
 * (`f·W_dec + b_dec`, plus `x·W_skipᵀ` where the set has a skip term). The
 * weights are read from the set's files once and fed with every run.
 */
import { TranscoderLayer } from '../dictionaries/transcoderSet';
import { GraphBuilder } from '../graph/builder';
import { Feed, GraphSession } from '../runtime';

export interface TranscoderOutputs {
  /** [rows, d_tc] */
  readonly features: Float32Array;
  /** [rows, d_model] */
  readonly prediction: Float32Array;
}

export class TranscoderForward {
  private constructor(
    private readonly session: GraphSession,
    private readonly weights: Readonly<Record<string, Feed>>,
    private readonly dModel: number,
  ) {}

  static async create(
    layer: TranscoderLayer,
    shape: { readonly dModel: number; readonly dTranscoder: number },
    threads = 0,
  ): Promise<TranscoderForward> {
    const { dModel: d, dTranscoder: s } = shape;
    const tensor = (data: Float32Array, dims: number[]): Feed => ({ type: 'float32', dims, data });
    const weights: Record<string, Feed> = {
      W_enc: tensor(layer.readEncoder(), [s, d]),
      b_enc: tensor(layer.readEncoderBias(), [s]),
      W_dec: tensor(layer.readDecoderRows(Array.from({ length: s }, (_, i) => i)), [s, d]),
      b_dec: tensor(layer.readDecoderBias(), [d]),
    };
    const threshold = layer.readThreshold();
    if (threshold) weights.threshold = tensor(threshold, [s]);
    const skip = layer.readSkip();
    if (skip) weights.W_skip = tensor(skip, [d, d]);

    const g = new GraphBuilder('unused.bin');
    const x = g.input('x', 'float', ['rows', d]);
    const input = (name: string): string => g.input(name, 'float', weights[name].dims);
    const pre = g.op('Gemm', [x, input('W_enc'), input('b_enc')], { transB: 1 });
    const act = layer.activation;
    let f: string;
    if (act.kind === 'relu') f = g.op('Relu', [pre]);
    else if (act.kind === 'jump_relu') {
      f = g.op('Mul', [pre, g.op('Cast', [g.op('Greater', [pre, input('threshold')])], { to: 1 })]);
    } else {
      const [vals, idx] = g.node('TopK', [pre, g.constI64([act.k])], { axis: -1 }, 2);
      const zeros = g.op('ConstantOfShape', [g.op('Shape', [pre])]);
      f = g.op('ScatterElements', [zeros, idx, vals], { axis: 1 });
    }
    let prediction = g.op('Gemm', [f, input('W_dec'), input('b_dec')]);
    if (skip) prediction = g.op('Add', [prediction, g.op('Gemm', [x, input('W_skip')], { transB: 1 })]);
    g.op('Identity', [f], {}, 'features');
    g.op('Identity', [prediction], {}, 'prediction');
    g.output('features');
    g.output('prediction');
    // Its weights are inputs, so the graph loads from memory.
    const session = await GraphSession.create(g.encode('transcoder_forward'), { threads });
    return new TranscoderForward(session, weights, d);
  }

  async run(x: Float32Array): Promise<TranscoderOutputs> {
    const rows = x.length / this.dModel;
    const out = await this.session.run(
      { ...this.weights, x: { type: 'float32', dims: [rows, this.dModel], data: x } },
      ['features', 'prediction'],
    );
    return { features: out.get('features')!.data, prediction: out.get('prediction')!.data };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
