/**
 * numpy's `.npz` files (Gemma Scope's `params.npz`): a zip of `.npy` arrays,
 * read without Python and without pickles. The zip's central directory
 * (zip64 included: numpy writes every entry with zip64 local headers, and
 * large files need zip64 offsets) lists the entries; each `.npy` header (v1,
 * v2 or v3) gives dtype, order and shape. Plain little-endian floats only
 * (f2, f4, f8): an object array is a pickle and is refused, as is any other
 * dtype. Fortran-ordered arrays are reordered to C order on read. Stored
 * entries are read in place, a tensor (or some rows of one) at a time;
 * deflated ones (`savez_compressed`) are inflated with a cap at the size
 * the header promises.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { LoupeError } from '../errors';
import { regularFileSize } from '../inputFiles';
import { toF32 } from '../safetensors';

/** numpy dtypes read here, with the safetensors dtype that widens the same bytes to f32. */
const NPY_DTYPES = { '<f2': 'F16', '<f4': 'F32', '<f8': 'F64' } as const;
type NpyDtype = keyof typeof NPY_DTYPES;
const DTYPE_BYTES: Record<NpyDtype, number> = { '<f2': 2, '<f4': 4, '<f8': 8 };

/** `.npy` headers are a short dict; numpy itself refuses ones past 10,000 bytes by default. */
const MAX_NPY_HEADER = 1 << 16;
const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_EOCD_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;

export interface NpyArrayInfo {
  /** The entry's name without `.npy`. */
  readonly name: string;
  readonly dtype: NpyDtype;
  /** The shape in C order (as numpy reports it, whatever the storage order). */
  readonly shape: readonly number[];
  readonly fortranOrder: boolean;
}

interface Entry {
  readonly info: NpyArrayInfo;
  readonly method: 'stored' | 'deflated';
  /** Absolute offset of the entry's bytes (the .npy file) in the zip. */
  readonly dataStart: number;
  readonly compressedSize: number;
  /** Offset of the array data inside the (uncompressed) .npy bytes. */
  readonly arrayOffset: number;
  readonly arrayBytes: number;
}

export class NpzFile {
  private constructor(
    readonly file: string,
    private readonly entries: ReadonlyMap<string, Entry>,
  ) {}

  /** The arrays it holds, by name. */
  get arrays(): ReadonlyMap<string, NpyArrayInfo> {
    return new Map([...this.entries].map(([k, e]) => [k, e.info]));
  }

  static open(file: string): NpzFile {
    const size = regularFileSize(file, '.npz file');
    const fd = fs.openSync(file, 'r');
    try {
      const read = (position: number, length: number): Buffer => readAt(fd, file, position, length, size);
      const entries = new Map<string, Entry>();
      for (const c of centralDirectory(file, read, size)) {
        if (!c.name.endsWith('.npy')) {
          throw new LoupeError(
            `${file}: holds '${c.name}', which is not a .npy array; an .npz holds only .npy files`,
          );
        }
        const local = read(c.localOffset, 30);
        if (local.readUInt32LE(0) !== LOCAL_SIGNATURE) {
          throw new LoupeError(
            `${file}: entry '${c.name}' has no local header where the directory says; the file is corrupt`,
          );
        }
        const dataStart = c.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
        if (dataStart + c.compressedSize > size) {
          throw new LoupeError(
            `${file}: entry '${c.name}' runs past the end of the file; the file is truncated`,
          );
        }
        const name = c.name.slice(0, -4);
        const what = `${file}: '${c.name}'`;
        let parsed: { info: NpyArrayInfo; arrayOffset: number };
        if (c.method === 'stored') {
          parsed = parseNpyHeader(read(dataStart, Math.min(c.size, MAX_NPY_HEADER + 12)), name, what);
        } else {
          const compressed = read(dataStart, c.compressedSize);
          const head = inflatePrefix(compressed, file, c.name);
          try {
            parsed = parseNpyHeader(head, name, what);
          } catch (err) {
            // A header longer than the inflated prefix: inflate the entry whole (capped at its size).
            if (head.length >= c.size) throw err;
            parsed = parseNpyHeader(inflateAll(compressed, c.size, file, name), name, what);
          }
        }
        const { info, arrayOffset } = parsed;
        const arrayBytes = info.shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[info.dtype];
        if (arrayOffset + arrayBytes !== c.size) {
          throw new LoupeError(
            `${file}: '${c.name}' is ${c.size} bytes but its header's shape [${info.shape.join(', ')}] of ${info.dtype} needs ${arrayOffset + arrayBytes}`,
          );
        }
        entries.set(name, {
          info,
          method: c.method,
          dataStart,
          compressedSize: c.compressedSize,
          arrayOffset,
          arrayBytes,
        });
      }
      return new NpzFile(file, entries);
    } finally {
      fs.closeSync(fd);
    }
  }

  info(name: string): NpyArrayInfo {
    return this.entry(name).info;
  }

  /** One array widened to f32, in C order. */
  readF32(name: string): Float32Array {
    const e = this.entry(name);
    const what = `${this.file}: '${name}.npy'`;
    const values = toF32(NPY_DTYPES[e.info.dtype], this.arrayBytes(e), what);
    return e.info.fortranOrder ? fortranToC(values, e.info.shape) : values;
  }

  /** Chosen rows (first axis) of a C-ordered array, widened to f32 and laid end to end. */
  readRowsF32(name: string, rows: readonly number[]): Float32Array {
    const e = this.entry(name);
    const { shape, dtype } = e.info;
    const rowElems = shape.slice(1).reduce((a, d) => a * d, 1);
    const what = `${this.file}: '${name}.npy'`;
    if (e.method !== 'stored' || e.info.fortranOrder) {
      // Compressed or column-major rows are not contiguous on disk: read the array once.
      const all = this.readF32(name);
      const out = new Float32Array(rows.length * rowElems);
      rows.forEach((r, i) =>
        out.set(all.subarray(checkRow(r, shape[0], what) * rowElems, (r + 1) * rowElems), i * rowElems),
      );
      return out;
    }
    const rowBytes = rowElems * DTYPE_BYTES[dtype];
    const out = new Float32Array(rows.length * rowElems);
    const fd = fs.openSync(this.file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      rows.forEach((r, i) => {
        const at = e.dataStart + e.arrayOffset + checkRow(r, shape[0], what) * rowBytes;
        out.set(toF32(NPY_DTYPES[dtype], readAt(fd, this.file, at, rowBytes, size), what), i * rowElems);
      });
    } finally {
      fs.closeSync(fd);
    }
    return out;
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) {
      throw new LoupeError(
        `${this.file}: no array named '${name}'; it holds ${[...this.entries.keys()].join(', ')}`,
      );
    }
    return e;
  }

  private arrayBytes(e: Entry): Buffer {
    const fd = fs.openSync(this.file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      if (e.method === 'stored')
        return readAt(fd, this.file, e.dataStart + e.arrayOffset, e.arrayBytes, size);
      const compressed = readAt(fd, this.file, e.dataStart, e.compressedSize, size);
      return inflateAll(compressed, e.arrayOffset + e.arrayBytes, this.file, e.info.name).subarray(
        e.arrayOffset,
      );
    } finally {
      fs.closeSync(fd);
    }
  }
}

function checkRow(r: number, nRows: number | undefined, what: string): number {
  const n = nRows ?? 1;
  if (!Number.isSafeInteger(r) || r < 0 || r >= n)
    throw new LoupeError(`${what} has ${n} rows; row ${r} does not exist`);
  return r;
}

function readAt(fd: number, file: string, position: number, length: number, size: number): Buffer {
  if (position < 0 || position + length > size) {
    throw new LoupeError(
      `${file}: needs bytes ${position}..${position + length} but the file has ${size}; it is truncated or corrupt`,
    );
  }
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new LoupeError(`${file}: unexpected end of file`);
    done += n;
  }
  return buf;
}

interface CentralEntry {
  readonly name: string;
  readonly method: 'stored' | 'deflated';
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
}

function centralDirectory(
  file: string,
  read: (position: number, length: number) => Buffer,
  size: number,
): CentralEntry[] {
  // The end record is the last 22 bytes plus a comment of up to 65535 bytes.
  const tailLength = Math.min(size, 22 + 0xffff);
  const tail = read(size - tailLength, tailLength);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD_SIGNATURE) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0)
    throw new LoupeError(
      `${file}: not a zip file (no end of central directory); an .npz is a zip of .npy files`,
    );
  let count = tail.readUInt16LE(eocd + 10);
  let dirSize = tail.readUInt32LE(eocd + 12);
  let dirOffset = tail.readUInt32LE(eocd + 16);
  const locatorAt = size - tailLength + eocd - 20;
  if ((count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) && locatorAt >= 0) {
    const locator = read(locatorAt, 20);
    if (locator.readUInt32LE(0) === ZIP64_EOCD_LOCATOR) {
      const record = read(safeNumber(locator.readBigUInt64LE(8), file), 56);
      if (record.readUInt32LE(0) !== ZIP64_EOCD)
        throw new LoupeError(`${file}: broken zip64 end record; the file is corrupt`);
      count = safeNumber(record.readBigUInt64LE(32), file);
      dirSize = safeNumber(record.readBigUInt64LE(40), file);
      dirOffset = safeNumber(record.readBigUInt64LE(48), file);
    }
  }
  if (dirOffset + dirSize > size)
    throw new LoupeError(`${file}: the zip directory lies past the end of the file; it is truncated`);
  const dir = read(dirOffset, dirSize);
  const out: CentralEntry[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > dir.length || dir.readUInt32LE(p) !== CENTRAL_SIGNATURE) {
      throw new LoupeError(
        `${file}: the zip directory is cut short at entry ${n} of ${count}; the file is corrupt`,
      );
    }
    const flags = dir.readUInt16LE(p + 8);
    const methodCode = dir.readUInt16LE(p + 10);
    let compressedSize = dir.readUInt32LE(p + 20);
    let usize = dir.readUInt32LE(p + 24);
    const nameLength = dir.readUInt16LE(p + 28);
    const extraLength = dir.readUInt16LE(p + 30);
    const commentLength = dir.readUInt16LE(p + 32);
    let localOffset = dir.readUInt32LE(p + 42);
    const name = dir.subarray(p + 46, p + 46 + nameLength).toString('utf8');
    // zip64 sizes and offset, present in the extra field for the values that overflowed 32 bits, in this order.
    const extra = dir.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength);
    for (let q = 0; q + 4 <= extra.length;) {
      const id = extra.readUInt16LE(q);
      const len = extra.readUInt16LE(q + 2);
      if (id === 0x0001) {
        let r = q + 4;
        const next = (): number => {
          if (r + 8 > q + 4 + len)
            throw new LoupeError(`${file}: entry '${name}' has a short zip64 field; the file is corrupt`);
          const v = safeNumber(extra.readBigUInt64LE(r), file);
          r += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localOffset === 0xffffffff) localOffset = next();
      }
      q += 4 + len;
    }
    if (flags & 1)
      throw new LoupeError(`${file}: entry '${name}' is encrypted; Loupe reads plain .npz files`);
    if (methodCode !== 0 && methodCode !== 8) {
      throw new LoupeError(
        `${file}: entry '${name}' uses zip compression method ${methodCode}; numpy writes stored (0) or deflated (8)`,
      );
    }
    out.push({
      name,
      method: methodCode === 0 ? 'stored' : 'deflated',
      compressedSize,
      size: usize,
      localOffset,
    });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return out;
}

function safeNumber(v: bigint, file: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new LoupeError(`${file}: a zip64 size or offset is out of range; the file is corrupt`);
  return Number(v);
}

function inflateAll(compressed: Buffer, expected: number, file: string, name: string): Buffer {
  let out: Buffer;
  try {
    // The cap is the size the directory promised: a zip bomb stops here, not in memory.
    out = zlib.inflateRawSync(compressed, { maxOutputLength: Math.max(1, expected) });
  } catch (err) {
    const why =
      (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE'
        ? 'it holds more'
        : `not valid deflate data: ${(err as Error).message}`;
    throw new LoupeError(
      `${file}: entry '${name}.npy' does not inflate to the ${expected} bytes its header promises (${why})`,
    );
  }
  if (out.length !== expected) {
    throw new LoupeError(
      `${file}: entry '${name}.npy' inflates to ${out.length} bytes, not the ${expected} its header promises`,
    );
  }
  return out;
}

/** The first bytes of a deflated entry: 4 KiB of deflate data (at most about 4 MiB inflated) hold any usual .npy header. */
function inflatePrefix(compressed: Buffer, file: string, name: string): Buffer {
  try {
    return zlib.inflateRawSync(compressed.subarray(0, 4096), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
      maxOutputLength: 8 << 20,
    });
  } catch (err) {
    throw new LoupeError(`${file}: entry '${name}' is not valid deflate data (${(err as Error).message})`);
  }
}

/** Parses a `.npy` header: magic, version, then a Python dict literal with descr, fortran_order and shape. */
export function parseNpyHeader(
  bytes: Buffer,
  name: string,
  what: string,
): { info: NpyArrayInfo; arrayOffset: number } {
  if (bytes.length < 10 || bytes.readUInt8(0) !== 0x93 || bytes.toString('latin1', 1, 6) !== 'NUMPY') {
    throw new LoupeError(`${what} is not a .npy array (no \\x93NUMPY magic)`);
  }
  const major = bytes.readUInt8(6);
  let headerLength: number;
  let start: number;
  if (major === 1) {
    headerLength = bytes.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new LoupeError(`${what}: the .npy header is cut short`);
    headerLength = bytes.readUInt32LE(8);
    start = 12;
  } else {
    throw new LoupeError(`${what}: .npy format version ${major} is not one numpy writes (1, 2 or 3)`);
  }
  if (headerLength > MAX_NPY_HEADER || start + headerLength > bytes.length) {
    throw new LoupeError(`${what}: the .npy header length ${headerLength} does not fit the entry`);
  }
  const header = bytes.toString(major === 3 ? 'utf8' : 'latin1', start, start + headerLength);
  const descr = /'descr'\s*:\s*('([^']*)'|\[)/.exec(header);
  const order = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeMatch = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !order || !shapeMatch) {
    throw new LoupeError(
      `${what}: the .npy header ${JSON.stringify(header.trim().slice(0, 120))} lacks descr, fortran_order or shape`,
    );
  }
  const dtype = descr[2];
  if (dtype === undefined)
    throw new LoupeError(`${what}: a structured (record) array; Loupe reads plain float arrays`);
  if (dtype === '|O' || dtype.endsWith('O')) {
    throw new LoupeError(
      `${what}: an object array, which numpy stores as a pickle; refused on purpose, because unpickling can run arbitrary code`,
    );
  }
  if (!(dtype in NPY_DTYPES)) {
    const bigEndian = dtype.startsWith('>') ? ' (big-endian; re-save with .astype("<f4"))' : '';
    throw new LoupeError(
      `${what}: dtype '${dtype}'${bigEndian} is not a little-endian float (<f2, <f4, <f8)`,
    );
  }
  const dims = shapeMatch[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const shape = dims.map((d) => {
    const n = Number(d.replace(/L$/, ''));
    if (!Number.isSafeInteger(n) || n < 0)
      throw new LoupeError(`${what}: shape (${shapeMatch[1]}) is not a tuple of sizes`);
    return n;
  });
  return {
    info: { name, dtype: dtype as NpyDtype, shape, fortranOrder: order[1] === 'True' },
    arrayOffset: start + headerLength,
  };
}

/** Reorders a column-major array of the given (C-order) shape into row-major order. */
function fortranToC(values: Float32Array, shape: readonly number[]): Float32Array {
  if (shape.length < 2) return values;
  const out = new Float32Array(values.length);
  const n = shape.length;
  // Column-major strides: the first axis varies fastest.
  const fStride: number[] = [];
  let s = 1;
  for (let d = 0; d < n; d++) {
    fStride.push(s);
    s *= shape[d];
  }
  const index = new Array<number>(n).fill(0);
  for (let c = 0; c < values.length; c++) {
    let f = 0;
    for (let d = 0; d < n; d++) f += index[d] * fStride[d];
    out[c] = values[f];
    for (let d = n - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}
