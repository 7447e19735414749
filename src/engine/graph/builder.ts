/**
 * A small writer for ONNX graphs over onnx-proto: named values, nodes, inputs,
 * outputs, and initializers that live in an external weights file (so that a
 * graph is kilobytes and every variant of a model shares one copy of its
 * weights on disk).
 */
import { onnx } from 'onnx-proto';

export type ElemType = 'float' | 'int64' | 'bool';

const ELEM: Record<ElemType, number> = {
  float: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
};

/** Where one initializer sits in the external weights file. */
export interface ExternalTensor {
  readonly offset: number;
  readonly length: number;
  readonly dims: readonly number[];
}

export type AttrValue = number | string | number[] | { float: number };

/** ONNX opset the graphs are written for (Gelu with approximate='tanh' needs 20). */
export const OPSET = 20;

export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly initialized = new Set<string>();
  private readonly constants = new Map<string, string>();
  private counter = 0;

  constructor(private readonly weightsFile: string) {}

  /** A fresh value name, readable in a dumped graph. */
  fresh(hint: string): string {
    return `${hint}__${this.counter++}`;
  }

  input(name: string, type: ElemType, dims?: readonly (number | string)[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: ElemType = 'float'): void {
    if (!this.outputs.some((o) => o.name === name)) this.outputs.push(valueInfo(name, type));
  }

  /** An f32 initializer read from the external weights file. */
  weight(name: string, ext: ExternalTensor): string {
    if (this.initialized.has(name)) return name;
    this.initialized.add(name);
    this.initializers.push({
      name,
      dims: [...ext.dims],
      dataType: onnx.TensorProto.DataType.FLOAT,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: this.weightsFile },
        { key: 'offset', value: String(ext.offset) },
        { key: 'length', value: String(ext.length) },
      ],
    });
    return name;
  }

  /** A small constant tensor embedded in the graph (shared when repeated). */
  constI64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant('i64', dims, values, (name) => ({
      name,
      dims: [...dims],
      dataType: onnx.TensorProto.DataType.INT64,
      int64Data: values.map((v) => v),
    }));
  }

  constF32(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant('f32', dims, values, (name) => ({
      name,
      dims: [...dims],
      dataType: onnx.TensorProto.DataType.FLOAT,
      floatData: [...values],
    }));
  }

  scalarF32(value: number): string {
    return this.constF32([value], []);
  }

  private constant(
    kind: string,
    dims: readonly number[],
    values: readonly number[],
    make: (name: string) => onnx.ITensorProto,
  ): string {
    const key = `${kind}:${dims.join('x')}:${values.join(',')}`;
    const existing = this.constants.get(key);
    if (existing) return existing;
    const name = this.fresh(`const_${kind}`);
    this.initializers.push(make(name));
    this.constants.set(key, name);
    return name;
  }

  /** Adds a node; returns its output names (one unless `outputs` says more). */
  node(
    opType: string,
    inputs: readonly string[],
    attrs: Record<string, AttrValue> = {},
    outputs: number | readonly string[] = 1,
    domain = '',
  ): string[] {
    const outNames =
      typeof outputs === 'number'
        ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()))
        : [...outputs];
    this.nodes.push({
      opType,
      domain,
      input: [...inputs],
      output: outNames,
      name: this.fresh(`n_${opType}`),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outNames;
  }

  /** One-output convenience form of `node`. */
  op(
    opType: string,
    inputs: readonly string[],
    attrs: Record<string, AttrValue> = {},
    name?: string,
  ): string {
    return this.node(opType, inputs, attrs, name ? [name] : 1)[0];
  }

  encode(graphName: string): Uint8Array {
    const model: onnx.IModelProto = {
      irVersion: 9,
      producerName: 'loupe',
      opsetImport: [
        { domain: '', version: OPSET },
        { domain: 'com.microsoft', version: 1 },
      ],
      graph: {
        name: graphName,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    };
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }
}

function valueInfo(name: string, type: ElemType, dims?: readonly (number | string)[]): onnx.IValueInfoProto {
  const tensorType: onnx.TypeProto.ITensor = { elemType: ELEM[type] };
  if (dims) {
    tensorType.shape = {
      dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
    };
  }
  return { name, type: { tensorType } };
}

function attribute(name: string, v: AttrValue): onnx.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: write floats as { float: x }`);
    return { name, type: A.INT, i: v };
  }
  if (typeof v === 'string') return { name, type: A.STRING, s: Buffer.from(v, 'utf8') };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  return { name, type: A.FLOAT, f: v.float };
}
