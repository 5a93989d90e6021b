import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import h5wasm from 'h5wasm/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { floatsDiffer, makeTempDir, randomVggWeights, writeKerasFile } from '../../../test/generators/vgg-weight-files'
import { KerasH5File, isHdf5File, kerasWeightRole } from './keras-h5'

let dir: string
beforeAll(async () => {
  dir = await makeTempDir('keras-h5-')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const weights = randomVggWeights({ depth: 11, widthDivisor: 16, seed: 2 })

describe('kerasWeightRole', () => {
  it('recognises Keras 1 and Keras 2 weight names', () => {
    expect(kerasWeightRole('block1_conv1_W_1:0')).toBe('kernel')
    expect(kerasWeightRole('block1_conv1_b_1:0')).toBe('bias')
    expect(kerasWeightRole('fc1_W:0')).toBe('kernel')
    expect(kerasWeightRole('block1_conv1/kernel:0')).toBe('kernel')
    expect(kerasWeightRole('predictions/bias:0')).toBe('bias')
    expect(kerasWeightRole('bn/gamma:0')).toBeUndefined()
  })
})

describe('KerasH5File', () => {
  for (const style of ['keras1', 'keras2'] as const) {
    it(`reads a ${style} weights file written with the Keras structure`, async () => {
      const path = join(dir, `${style}.h5`)
      await writeKerasFile(path, weights, { style })
      expect(await isHdf5File(path)).toBe(true)
      const file = await KerasH5File.open(path)
      try {
        expect(file.layerNames.slice(0, 4)).toEqual(['input_1', 'block1_conv1', 'block1_pool', 'block2_conv1'])
        expect(file.layerNames).toContain('flatten')
        const fc1Kernel = file.entries.find((e) => e.layer === 'fc1' && e.role === 'kernel')
        expect(fc1Kernel).toMatchObject({
          path: style === 'keras1' ? '/fc1/fc1_W_1:0' : '/fc1/fc1/kernel:0',
          shape: weights.get('fc1')?.kernelShape
        })
        expect(file.entries.filter((e) => e.role === undefined)).toEqual([])
        expect(file.attributes.backend).toBe('tensorflow')
        for (const entry of file.entries) {
          const w = weights.get(entry.layer)
          const expected = entry.role === 'kernel' ? w?.kernel : w?.bias
          expect(floatsDiffer(file.readFloat32(entry.path), expected ?? new Float32Array(0)), entry.path).toBeUndefined()
        }
      } finally {
        file.close()
      }
    })
  }

  it('reads big datasets in row slices with the same result', async () => {
    const path = join(dir, 'slices.h5')
    await writeKerasFile(path, weights)
    // 1000 bytes is less than one row of most kernels (at least one row is always read); 30000
    // bytes reads fc1 (1568 rows of 256 floats) 29 rows at a time, leaving a short last slice.
    for (const readSliceBytes of [1000, 30_000]) {
      const file = await KerasH5File.open(path, { readSliceBytes })
      try {
        for (const entry of file.entries) {
          const w = weights.get(entry.layer)
          const expected = entry.role === 'kernel' ? w?.kernel : w?.bias
          expect(floatsDiffer(file.readFloat32(entry.path), expected ?? new Float32Array(0)), entry.path).toBeUndefined()
        }
      } finally {
        file.close()
      }
    }
  })

  it('reads a full-model file (weights under /model_weights)', async () => {
    const path = join(dir, 'full.h5')
    await writeKerasFile(path, weights, { fullModel: true })
    const file = await KerasH5File.open(path)
    try {
      expect(file.entries[0].path).toBe('/model_weights/block1_conv1/block1_conv1/kernel:0')
    } finally {
      file.close()
    }
  })

  it('rejects a truncated file before HDF5 sees it', async () => {
    const path = join(dir, 'cut.h5')
    await writeKerasFile(path, weights)
    const bytes = await readFile(path)
    await writeFile(path, bytes.subarray(0, bytes.length - 1000))
    await expect(KerasH5File.open(path)).rejects.toThrow(/cut\.h5: file is truncated: HDF5 superblock says \d+ bytes, file has \d+/)
  })

  it('rejects an HDF5 file that is not a Keras weights file', async () => {
    const path = join(dir, 'other.h5')
    await h5wasm.ready
    const f = new h5wasm.File(path, 'w')
    f.create_dataset({ name: 'x', data: new Float32Array(3) })
    f.close()
    await expect(KerasH5File.open(path)).rejects.toThrow(/other\.h5: not a Keras weights file: no layer_names attribute/)
  })

  it('rejects a file without an HDF5 signature', async () => {
    const path = join(dir, 'garbage.h5')
    await writeFile(path, 'definitely not hdf5')
    await expect(KerasH5File.open(path)).rejects.toThrow(/garbage\.h5: not an HDF5 file/)
  })
})
