/**
 * The one safetensors reader and writer. Reading parses and checks the header
 * without touching the data, then reads single tensors on demand (so a large
 * checkpoint streams through memory one tensor at a time) and widens f16/bf16
 * to f32. Every malformed file gets a LoupeError naming the file and the fault.
 */
import * as fs from 'node:fs';
import { LoupeError } from './errors';
import { checkOutputFile, writeFileAtomic } from './safeWrite';
import { regularFileSize } from './inputFiles';
import { JSON_KINDS, parseUntrustedJson } from './untrustedJson';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Headers past this size are refused: real ones are kilobytes to a few megabytes. */
const MAX_HEADER_BYTES = JSON_KINDS.safetensorsHeader.maxBytes;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Absolute byte offsets in the file. */
  readonly begin: number;
  readonly end: number;
}

export class SafetensorsFile {
  readonly tensors: ReadonlyMap<string, TensorInfo>;

  private constructor(
    readonly file: string,
    tensors: Map<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {
    this.tensors = tensors;
  }

  static open(file: string): SafetensorsFile {
    // Before opening: opening a pipe for reading would wait for a writer forever.
    regularFileSize(file, 'safetensors file');
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      throw new LoupeError(`${file}: cannot open (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size === 0) throw new LoupeError(`${file}: the file is empty, not a safetensors file`);
      if (size < 8) throw new LoupeError(`${file}: only ${size} bytes; too short for a safetensors header`);
      const lenBuf = Buffer.alloc(8);
      fs.readSync(fd, lenBuf, 0, 8, 0);
      const headerLen = Number(lenBuf.readBigUInt64LE(0));
      if (headerLen > MAX_HEADER_BYTES || 8 + headerLen > size) {
        throw new LoupeError(
          `${file}: header length ${headerLen} does not fit the ${size}-byte file; the file is truncated or not safetensors`,
        );
      }
      const headerBuf = Buffer.alloc(headerLen);
      fs.readSync(fd, headerBuf, 0, headerLen, 8);
      const header = parseUntrustedJson(headerBuf.toString('utf8'), file, JSON_KINDS.safetensorsHeader);
      if (typeof header !== 'object' || header === null || Array.isArray(header)) {
        throw new LoupeError(`${file}: the header is not a JSON object`);
      }
      const dataStart = 8 + headerLen;
      const dataSize = size - dataStart;
      const tensors = new Map<string, TensorInfo>();
      let metadata: Record<string, string> = {};
      for (const [key, value] of Object.entries(header as Record<string, unknown>)) {
        if (key === '__metadata__') {
          metadata = parseMetadata(file, value);
          continue;
        }
        tensors.set(key, parseEntry(file, key, value, dataStart, dataSize));
      }
      checkNoOverlap(file, [...tensors.values()]);
      return new SafetensorsFile(file, tensors, metadata);
    } finally {
      fs.closeSync(fd);
    }
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new LoupeError(`${this.file}: no tensor named '${name}'`);
    return t;
  }

  /** Raw little-endian bytes of one tensor. */
  readBytes(name: string): Buffer {
    const t = this.info(name);
    const buf = Buffer.alloc(t.end - t.begin);
    this.readRange(t.begin, buf, name);
    return buf;
  }

  /** One floating-point tensor widened to f32. */
  readF32(name: string): Float32Array {
    const t = this.info(name);
    if (t.dtype === 'F32') {
      // Read straight into the result: one allocation, no intermediate buffer.
      const out = new Float32Array((t.end - t.begin) / 4);
      this.readRange(t.begin, new Uint8Array(out.buffer), name);
      return out;
    }
    return toF32(t.dtype, this.readBytes(name), `${this.file}: tensor '${name}'`);
  }

  /**
   * Appends one tensor, widened to f32, to an open file, a chunk at a time: how
   * a large checkpoint is converted without holding a whole tensor twice.
   * Returns the number of bytes written.
   */
  streamF32To(name: string, outFd: number): number {
    const t = this.info(name);
    const what = `${this.file}: tensor '${name}'`;
    const width = DTYPE_BYTES[t.dtype];
    const chunkElems = 1 << 20;
    const inBuf = Buffer.alloc(chunkElems * width);
    let written = 0;
    for (let pos = t.begin; pos < t.end; pos += inBuf.length) {
      const len = Math.min(inBuf.length, t.end - pos);
      const chunk = inBuf.subarray(0, len);
      this.readRange(pos, chunk, name);
      const values =
        t.dtype === 'F32' ? new Float32Array(chunk.buffer, 0, len / 4) : toF32(t.dtype, chunk, what);
      assertFinite(values, what);
      const f32 = new Uint8Array(values.buffer, 0, values.byteLength);
      fs.writeSync(outFd, f32);
      written += f32.length;
    }
    return written;
  }

  /**
   * Chosen rows (along the first axis) of one floating-point tensor, widened
   * to f32 and laid end to end: how a large dictionary's decoder is read a
   * few features at a time, with memory in proportion to the rows asked for.
   */
  readRowsF32(name: string, rows: readonly number[]): Float32Array {
    const t = this.info(name);
    const nRows = t.shape[0] ?? 1;
    const rowElems = t.shape.slice(1).reduce((a, d) => a * d, 1);
    const rowBytes = rowElems * DTYPE_BYTES[t.dtype];
    const out = new Float32Array(rows.length * rowElems);
    const buf = Buffer.alloc(rowBytes);
    const what = `${this.file}: tensor '${name}'`;
    rows.forEach((r, i) => {
      if (!Number.isSafeInteger(r) || r < 0 || r >= nRows) {
        throw new LoupeError(`${what} has ${nRows} rows; row ${r} does not exist`);
      }
      this.readRange(t.begin + r * rowBytes, buf, name);
      out.set(toF32(t.dtype, buf, what), i * rowElems);
    });
    return out;
  }

  private readRange(position: number, into: Uint8Array, name: string): void {
    const fd = fs.openSync(this.file, 'r');
    try {
      let done = 0;
      while (done < into.length) {
        const n = fs.readSync(fd, into, done, into.length - done, position + done);
        if (n === 0) throw new LoupeError(`${this.file}: unexpected end of file reading '${name}'`);
        done += n;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}

function parseMetadata(file: string, value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new LoupeError(`${file}: __metadata__ is not an object of strings`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new LoupeError(`${file}: __metadata__.${k} is not a string`);
    out[k] = v;
  }
  return out;
}

function parseEntry(
  file: string,
  key: string,
  value: unknown,
  dataStart: number,
  dataSize: number,
): TensorInfo {
  const where = `${file}: tensor '${key}'`;
  if (typeof value !== 'object' || value === null)
    throw new LoupeError(`${where} has no header entry object`);
  const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof v.dtype !== 'string' || !(v.dtype in DTYPE_BYTES)) {
    throw new LoupeError(`${where} has unsupported dtype ${JSON.stringify(v.dtype)}`);
  }
  const dtype = v.dtype as SafetensorsDtype;
  if (!Array.isArray(v.shape) || !v.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new LoupeError(`${where} has an invalid shape ${JSON.stringify(v.shape)}`);
  }
  const shape = v.shape as number[];
  const offs = v.data_offsets;
  if (
    !Array.isArray(offs) ||
    offs.length !== 2 ||
    !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offs[1] < offs[0]
  ) {
    throw new LoupeError(`${where} has invalid data_offsets ${JSON.stringify(offs)}`);
  }
  const [b, e] = offs as [number, number];
  if (e > dataSize) {
    throw new LoupeError(
      `${where} ends at byte ${e} of the data section, but the file holds only ${dataSize}; the file is truncated`,
    );
  }
  const expected = shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[dtype];
  if (e - b !== expected) {
    throw new LoupeError(
      `${where}: shape [${shape.join(', ')}] of ${dtype} needs ${expected} bytes but data_offsets give ${e - b}`,
    );
  }
  return { name: key, dtype, shape, begin: dataStart + b, end: dataStart + e };
}

function checkNoOverlap(file: string, infos: TensorInfo[]): void {
  // A tensor with a 0 in its shape holds no bytes, so it overlaps nothing wherever its offsets point.
  const sorted = infos.filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) {
      throw new LoupeError(
        `${file}: tensors '${sorted[i - 1].name}' and '${sorted[i].name}' overlap in the data section`,
      );
    }
  }
}

const f16Table = (() => {
  // All 65536 half-precision values, computed once: widening is then a lookup.
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    let v: number;
    if (exp === 0) v = frac * 2 ** -24;
    else if (exp === 31) v = frac ? NaN : Infinity;
    else v = (1 + frac / 1024) * 2 ** (exp - 15);
    table[h] = sign * v;
  }
  return table;
})();

/** Weights with NaN or infinity are corrupt (or diverged): refuse them before they poison every output. */
export function assertFinite(values: Float32Array, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new LoupeError(
        `${what} holds a non-finite value (not a number, or infinite) at index ${i}; the checkpoint is corrupt`,
      );
    }
  }
}

function halfWords(bytes: Buffer): Uint16Array {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Uint16Array(copy.buffer);
}

export function toF32(dtype: SafetensorsDtype, bytes: Buffer, what: string): Float32Array {
  const n = bytes.length / DTYPE_BYTES[dtype];
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      // Hosts are little-endian (x86-64, arm64), as is the format: copy the bytes.
      new Uint8Array(out.buffer).set(bytes);
      return out;
    case 'F16': {
      const u16 = halfWords(bytes);
      for (let i = 0; i < n; i++) out[i] = f16Table[u16[i]];
      return out;
    }
    case 'BF16': {
      // bf16 is the top half of an f32: shift it back into place.
      const u16 = halfWords(bytes);
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u32[i] = u16[i] << 16;
      return out;
    }
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = bytes.readDoubleLE(i * 8);
      return out;
    default:
      throw new LoupeError(`${what} is ${dtype}; a floating-point tensor (F32, F16, BF16) was expected`);
  }
}

/** Integer tensors (token ids in fixtures and exports), as plain numbers. */
export function toInts(dtype: SafetensorsDtype, bytes: Buffer, what: string): number[] {
  switch (dtype) {
    case 'I64':
      return Array.from({ length: bytes.length / 8 }, (_, i) => Number(bytes.readBigInt64LE(i * 8)));
    case 'I32':
      return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readInt32LE(i * 4));
    default:
      throw new LoupeError(`${what} is ${dtype}; an integer tensor (I64, I32) was expected`);
  }
}

export interface TensorToWrite {
  readonly dtype: 'F32' | 'F16' | 'I64' | 'I32';
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array | BigInt64Array | Uint16Array;
}

/** A safetensors file's bytes, in order: header length, header (padded to 8 bytes as the format asks), tensors. */
export function safetensorsChunks(
  tensors: ReadonlyMap<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = t.data.byteLength;
    const expected = t.shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[t.dtype];
    if (bytes !== expected)
      throw new Error(`tensor '${name}': ${bytes} bytes for shape [${t.shape.join(', ')}]`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return [
    len,
    json,
    ...[...tensors.values()].map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
  ];
}

/**
 * Writes a safetensors file as a user's result: an existing target must be a
 * safetensors file, and the file is the old one or the new one whatever
 * happens (safeWrite.ts).
 */
export function writeSafetensors(
  file: string,
  tensors: ReadonlyMap<string, TensorToWrite>,
  metadata?: Record<string, string>,
): void {
  checkOutputFile(file, 'safetensors');
  writeFileAtomic(file, safetensorsChunks(tensors, metadata));
}

/** f32 values rounded to the nearest f16 (ties to even), as the bit patterns a safetensors F16 tensor stores. */
export function f32ToF16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
    } else if (e <= 0) {
      // Subnormal or zero in f16: shift the mantissa (with its implicit 1) into place, rounding to even.
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      const m = mant | 0x800000;
      const shift = 14 - e;
      let half = m >>> shift;
      const rest = m & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rest > mid || (rest === mid && half & 1)) half++;
      out[i] = sign | half;
    } else {
      let half = (e << 10) | (mant >>> 13);
      const rest = mant & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
      out[i] = sign | half;
    }
  }
  return out;
}
