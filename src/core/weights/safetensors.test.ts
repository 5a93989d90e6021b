import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  SafetensorsFile,
  encodeSafetensors,
  float16BitsToNumber,
  numberToBfloat16Bits,
  numberToFloat16Bits,
  readSafetensors,
  writeSafetensors
} from './safetensors'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'safetensors-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A file built by hand, independent of the writer. */
async function rawFile(name: string, header: unknown, data: Uint8Array, headerLength?: bigint): Promise<string> {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header))
  const bytes = new Uint8Array(8 + json.byteLength + data.byteLength)
  new DataView(bytes.buffer).setBigUint64(0, headerLength ?? BigInt(json.byteLength), true)
  bytes.set(json, 8)
  bytes.set(data, 8 + json.byteLength)
  const path = join(dir, name)
  await writeFile(path, bytes)
  return path
}

function u16le(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2)
  values.forEach((v, i) => new DataView(out.buffer).setUint16(i * 2, v, true))
  return out
}

describe('reading', () => {
  it('decodes F16 and BF16 bit patterns, and F64, to float32', async () => {
    const f16 = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x3555, 0x8000]
    const bf16 = [0x3f80, 0xc040, 0x4049]
    const f64 = new Uint8Array(16)
    new DataView(f64.buffer).setFloat64(0, 0.1, true)
    new DataView(f64.buffer).setFloat64(8, -1e300, true)
    const data = new Uint8Array([...u16le(f16), ...u16le(bf16), ...f64])
    const path = await rawFile('dtypes.safetensors', {
      h: { dtype: 'F16', shape: [2, 4], data_offsets: [0, 16] },
      b: { dtype: 'BF16', shape: [3], data_offsets: [16, 22] },
      d: { dtype: 'F64', shape: [2], data_offsets: [22, 38] },
      __metadata__: { format: 'pt' }
    }, data)
    const { tensors, metadata } = await readSafetensors(path)
    expect(metadata).toEqual({ format: 'pt' })
    expect(tensors.get('h')?.shape).toEqual([2, 4])
    expect([...(tensors.get('h')?.data ?? [])]).toEqual([1, -2, 65504, 2 ** -24, Infinity, -Infinity, Math.fround(0.333251953125), -0])
    expect([...(tensors.get('b')?.data ?? [])]).toEqual([1, -3, 3.140625])
    expect([...(tensors.get('d')?.data ?? [])]).toEqual([Math.fround(0.1), -Infinity])
    expect(float16BitsToNumber(0x7e00)).toBeNaN()
  })

  it('reads a tensor at an unaligned offset', async () => {
    const data = new Uint8Array(1 + 8)
    new DataView(data.buffer).setFloat32(1, 1.5, true)
    new DataView(data.buffer).setFloat32(5, -7.25, true)
    const path = await rawFile('unaligned.safetensors', {
      a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] },
      f: { dtype: 'F32', shape: [2], data_offsets: [1, 9] }
    }, data)
    const file = await SafetensorsFile.open(path)
    try {
      expect([...(await file.readFloat32('f'))]).toEqual([1.5, -7.25])
      await expect(file.readFloat32('a')).rejects.toThrow(/unaligned\.safetensors: tensor a has dtype U8; only F32, F16, BF16, F64/)
      await expect(file.readFloat32('zzz')).rejects.toThrow(/missing tensor zzz/)
    } finally {
      await file.close()
    }
  })
})

describe('float16 / bfloat16 encoding', () => {
  it('rounds to nearest even', () => {
    expect(numberToFloat16Bits(1)).toBe(0x3c00)
    expect(numberToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00) // tie -> even
    expect(numberToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02) // tie -> even (up)
    expect(numberToFloat16Bits(65504)).toBe(0x7bff)
    expect(numberToFloat16Bits(65520)).toBe(0x7c00) // rounds up to infinity
    expect(numberToFloat16Bits(2 ** -24)).toBe(0x0001)
    expect(numberToFloat16Bits(2 ** -25)).toBe(0x0000) // tie -> even (zero)
    expect(numberToFloat16Bits(3 * 2 ** -26)).toBe(0x0001)
    expect(numberToFloat16Bits(-0)).toBe(0x8000)
    expect(numberToFloat16Bits(NaN) & 0x7c00).toBe(0x7c00)
    expect(numberToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80) // tie -> even
    expect(numberToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82)
    expect(numberToBfloat16Bits(-3)).toBe(0xc040)
  })

  it('decodes every finite half exactly back to the same bits', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = float16BitsToNumber(h)
      if (Number.isNaN(v)) continue
      expect(numberToFloat16Bits(v)).toBe(h)
    }
  })
})

describe('writing', () => {
  it('round-trips F32, F64, F16, BF16 and metadata; the data section is 8-byte aligned', async () => {
    const values = Float32Array.from([0.5, -1.25, 3, 1024, -0.0078125, 96])
    const path = join(dir, 'rt.safetensors')
    await writeSafetensors(path, {
      f32: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([0.1, 0.2, 0.3, -4e-7, 1e30, -3.5]) },
      f64: { dtype: 'F64', shape: [6], data: values },
      f16: { dtype: 'F16', shape: [3, 2], data: values },
      bf16: { dtype: 'BF16', shape: [6], data: values },
      steps: { dtype: 'I64', shape: [], data: [7] }
    }, { note: 'hi' })
    const file = await SafetensorsFile.open(path)
    try {
      expect(file.header.dataStart % 8).toBe(0)
      expect(file.metadata).toEqual({ note: 'hi' })
      expect([...file.tensors.keys()]).toEqual(['f32', 'f64', 'f16', 'bf16', 'steps'])
      expect(await file.readFloat32('f32')).toEqual(Float32Array.from([0.1, 0.2, 0.3, -4e-7, 1e30, -3.5]))
      for (const n of ['f64', 'f16', 'bf16']) expect(await file.readFloat32(n)).toEqual(values)
      expect(file.tensors.get('steps')).toMatchObject({ dtype: 'I64', shape: [], dataOffsets: [96, 104] })
      expect(new DataView((await file.readBytes('steps')).buffer).getBigInt64(0, true)).toBe(7n)
    } finally {
      await file.close()
    }
    expect(new Uint8Array(await readFile(path))).toEqual(encodeSafetensors({
      f32: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([0.1, 0.2, 0.3, -4e-7, 1e30, -3.5]) },
      f64: { dtype: 'F64', shape: [6], data: values },
      f16: { dtype: 'F16', shape: [3, 2], data: values },
      bf16: { dtype: 'BF16', shape: [6], data: values },
      steps: { dtype: 'I64', shape: [], data: [7] }
    }, { note: 'hi' }))
  })

  it('refuses data that does not match the shape', async () => {
    await expect(writeSafetensors(join(dir, 'x.safetensors'), { t: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }))
      .rejects.toThrow(/tensor t has 3 values but shape \[2,2\] needs 4/)
  })
})

describe('validation', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }

  it('rejects a header length beyond the file size', async () => {
    const path = await rawFile('long.safetensors', ok, new Uint8Array(12), 10_000n)
    await expect(SafetensorsFile.open(path)).rejects.toThrow(/long\.safetensors: safetensors header length 10000 exceeds the file size/)
  })

  it('rejects a file shorter than the length prefix', async () => {
    const path = join(dir, 'tiny.safetensors')
    await writeFile(path, new Uint8Array(5))
    await expect(SafetensorsFile.open(path)).rejects.toThrow(/tiny\.safetensors: file is truncated or not safetensors: only 5 bytes/)
  })

  it('rejects invalid JSON and non-object headers', async () => {
    await expect(SafetensorsFile.open(await rawFile('json.safetensors', '{"a": {', new Uint8Array(0))))
      .rejects.toThrow(/json\.safetensors: invalid safetensors header: not valid JSON/)
    await expect(SafetensorsFile.open(await rawFile('arr.safetensors', '[1,2]', new Uint8Array(0))))
      .rejects.toThrow(/expected a JSON object/)
  })

  it('rejects offsets beyond the data (truncated file), naming the tensor', async () => {
    const path = await rawFile('cut.safetensors', ok, new Uint8Array(10))
    await expect(SafetensorsFile.open(path)).rejects.toThrow(/cut\.safetensors: file is truncated: tensor b needs bytes 8\.\.12 of the data section, which holds only 10 bytes/)
  })

  it('rejects a written file cut short', async () => {
    const path = join(dir, 'whole.safetensors')
    await writeSafetensors(path, { w: { dtype: 'F32', shape: [100], data: new Float32Array(100) } })
    const bytes = await readFile(path)
    await writeFile(path, bytes.subarray(0, bytes.length - 4))
    await expect(SafetensorsFile.open(path)).rejects.toThrow(/whole\.safetensors: file is truncated: tensor w/)
  })

  it('rejects overlapping tensors, naming both', async () => {
    const path = await rawFile('overlap.safetensors', {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] }
    }, new Uint8Array(12))
    await expect(SafetensorsFile.open(path)).rejects.toThrow(/overlap\.safetensors: invalid safetensors header: tensors a and b overlap/)
  })

  it('rejects offsets that do not match shape x dtype size', async () => {
    const path = await rawFile('size.safetensors', { a: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8))
    await expect(SafetensorsFile.open(path)).rejects.toThrow(/size\.safetensors: invalid safetensors header: tensor a has data_offsets \[0,8\] spanning 8 bytes, but shape \[3\] of F16 needs 6/)
  })

  it('rejects holes, trailing bytes, unknown dtypes and bad shapes', async () => {
    await expect(SafetensorsFile.open(await rawFile('hole.safetensors', { a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8))))
      .rejects.toThrow(/4 unindexed bytes before tensor a/)
    await expect(SafetensorsFile.open(await rawFile('trail.safetensors', ok, new Uint8Array(16))))
      .rejects.toThrow(/4 bytes after the last tensor/)
    await expect(SafetensorsFile.open(await rawFile('dtype.safetensors', { a: { dtype: 'F12', shape: [1], data_offsets: [0, 2] } }, new Uint8Array(2))))
      .rejects.toThrow(/tensor a has unknown dtype "F12"/)
    await expect(SafetensorsFile.open(await rawFile('shape.safetensors', { a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4))))
      .rejects.toThrow(/tensor a has invalid shape \[-1\]/)
  })
})
