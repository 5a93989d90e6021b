import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  batchNormStateDict,
  makeTempDir,
  randomVggWeights,
  vggWeightsDiffer,
  writeKerasFile,
  writeTorchSafetensors,
  type TorchSafetensorsOptions
} from '../../../test/generators/vgg-weight-files'
import { detectWeightFormat, loadVggWeights } from './load-weights'
import { float16BitsToNumber, numberToBfloat16Bits, numberToFloat16Bits, readSafetensors, writeSafetensors } from './safetensors'
import { CAFFE_PREPROCESSING, TORCHVISION_PREPROCESSING, type VggWeights } from './vgg-weights'
import { vggSpec, type VggDepth } from './vgg-spec'

let dir: string
beforeAll(async () => {
  dir = await makeTempDir('load-weights-')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const small = { depth: 16 as const, widthDivisor: 16 }
const weights16 = randomVggWeights({ ...small, numClasses: 10, seed: 1 })
const spec16 = vggSpec(small)

let fileCount = 0
async function torchFile(weights: VggWeights, options: Partial<TorchSafetensorsOptions> = {}, name = 'weights.safetensors'): Promise<string> {
  const sub = join(dir, `t${fileCount++}`)
  await mkdir(sub)
  const path = join(sub, name)
  await writeTorchSafetensors(path, weights, { flavor: 'torchvision', ...small, ...options })
  return path
}

function mapValues(weights: VggWeights, f: (v: number) => number): VggWeights {
  const out: VggWeights = new Map()
  for (const [name, w] of weights) out.set(name, { kernel: w.kernel.map(f), kernelShape: w.kernelShape, bias: w.bias.map(f) })
  return out
}

describe('torchvision and timm safetensors', () => {
  it('torchvision VGG16: exact round trip, and the raw file obeys the torch layout element by element', async () => {
    const path = await torchFile(weights16)
    const loaded = await loadVggWeights(path, { widthDivisor: 16 })
    expect(loaded).toMatchObject({ source: 'torchvision', format: 'safetensors', depth: 16, hasTop: true, numClasses: 10, warnings: [] })
    expect(loaded.preprocessing).toEqual(TORCHVISION_PREPROCESSING)
    expect(vggWeightsDiffer(loaded.weights, weights16)).toBeUndefined()

    const raw = (await readSafetensors(path)).tensors
    const fc1 = loaded.weights.get('fc1')
    const torchFc1 = raw.get('classifier.0.weight')
    const [C, H, W, O] = [spec16.lastChannels, 7, 7, spec16.fcUnits]
    expect(torchFc1?.shape).toEqual([O, C * H * W])
    for (const [h, w, c, o] of [[0, 0, 0, 0], [6, 6, C - 1, O - 1], [2, 5, 3, 17], [6, 0, 11, 200], [3, 3, 31, 1]]) {
      expect(fc1?.kernel[((h * W + w) * C + c) * O + o]).toBe(torchFc1?.data[o * C * H * W + c * H * W + h * W + w])
    }
    const conv = loaded.weights.get('block2_conv1')
    const torchConv = raw.get('features.5.weight')
    expect(torchConv?.shape).toEqual([8, 4, 3, 3])
    for (const [y, x, i, o] of [[0, 0, 0, 0], [2, 1, 3, 7], [1, 2, 2, 5]]) {
      expect(conv?.kernel[((y * 3 + x) * 4 + i) * 8 + o]).toBe(torchConv?.data[((o * 4 + i) * 3 + y) * 3 + x])
    }
    const head = loaded.weights.get('predictions')
    expect(head?.kernelShape).toEqual([256, 10])
    expect(head?.kernel[100 * 10 + 7]).toBe(raw.get('classifier.6.weight')?.data[7 * 256 + 100])
  })

  it('timm VGG16 (fc1 as a [4096,512,7,7] conv): exact round trip and element check', async () => {
    const path = await torchFile(weights16, { flavor: 'timm' })
    const loaded = await loadVggWeights(path, { depth: 16, widthDivisor: 16 })
    expect(loaded).toMatchObject({ source: 'timm', hasTop: true, numClasses: 10 })
    expect(loaded.preprocessing).toEqual(TORCHVISION_PREPROCESSING)
    expect(vggWeightsDiffer(loaded.weights, weights16)).toBeUndefined()
    const raw = (await readSafetensors(path)).tensors
    const [C, O] = [spec16.lastChannels, spec16.fcUnits]
    expect(raw.get('pre_logits.fc1.weight')?.shape).toEqual([O, C, 7, 7])
    expect(raw.get('pre_logits.fc2.weight')?.shape).toEqual([O, O, 1, 1])
    const [h, w, c, o] = [4, 1, 9, 33]
    expect(loaded.weights.get('fc1')?.kernel[((h * 7 + w) * C + c) * O + o]).toBe(raw.get('pre_logits.fc1.weight')?.data[((o * C + c) * 7 + h) * 7 + w])
  })

  it('converts F16, BF16 and F64 files to float32 exactly', async () => {
    const toF16 = (v: number): number => float16BitsToNumber(numberToFloat16Bits(v))
    const toBf16 = (v: number): number => {
      const f = new Float32Array(1)
      new Uint32Array(f.buffer)[0] = numberToBfloat16Bits(v) << 16
      return f[0]
    }
    for (const [dtype, round] of [['F16', toF16], ['BF16', toBf16], ['F64', (v: number) => v]] as const) {
      const expected = mapValues(weights16, round)
      const loaded = await loadVggWeights(await torchFile(weights16, { dtype }), small)
      expect(vggWeightsDiffer(loaded.weights, expected), dtype).toBeUndefined()
    }
  })

  it('accepts DataParallel "module." names, no-top files and timm without a head', async () => {
    const prefixed = await loadVggWeights(await torchFile(weights16, { prefix: 'module.' }), small)
    expect(vggWeightsDiffer(prefixed.weights, weights16)).toBeUndefined()

    const notop = randomVggWeights({ ...small, top: 'notop', seed: 3 })
    const loadedNotop = await loadVggWeights(await torchFile(notop), small)
    expect(loadedNotop).toMatchObject({ hasTop: false, numClasses: undefined })
    expect(vggWeightsDiffer(loadedNotop.weights, notop)).toBeUndefined()

    const noHead = randomVggWeights({ ...small, top: 'no-head', seed: 4 })
    const loadedNoHead = await loadVggWeights(await torchFile(noHead, { flavor: 'timm' }), small)
    expect(loadedNoHead).toMatchObject({ source: 'timm', hasTop: false, numClasses: undefined })
    expect([...loadedNoHead.weights.keys()].slice(-2)).toEqual(['fc1', 'fc2'])
    expect(vggWeightsDiffer(loadedNoHead.weights, noHead)).toBeUndefined()
  })

  it('detects the depth of VGG11, VGG13 and VGG19', async () => {
    for (const depth of [11, 13, 19] as VggDepth[]) {
      const w = randomVggWeights({ depth, widthDivisor: 16, numClasses: 3, seed: depth })
      const loaded = await loadVggWeights(await torchFile(w, { depth }), { widthDivisor: 16 })
      expect(loaded.depth).toBe(depth)
      expect(vggWeightsDiffer(loaded.weights, w), `VGG${depth}`).toBeUndefined()
    }
  })

  it('validates a full-width VGG16 (no top, 58 MB) against the real shapes', async () => {
    const real = randomVggWeights({ depth: 16, top: 'notop', seed: 5 })
    const path = await torchFile(real, { depth: 16, widthDivisor: 1 })
    const loaded = await loadVggWeights(path, { depth: 16 })
    expect([...loaded.weights.values()].map((w) => w.kernelShape[3])).toEqual([64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512])
    expect(loaded.weights.get('block5_conv3')?.kernelShape).toEqual([3, 3, 512, 512])
    expect(vggWeightsDiffer(loaded.weights, real)).toBeUndefined()
    await rm(path)
  })
})

describe('Keras HDF5', () => {
  for (const style of ['keras1', 'keras2'] as const) {
    it(`${style} weights file: exact round trip with caffe preprocessing`, async () => {
      const path = join(dir, `vgg16_${style}.h5`)
      await writeKerasFile(path, weights16, { style })
      const loaded = await loadVggWeights(path, small)
      expect(loaded).toMatchObject({ source: 'keras', format: 'keras-h5', depth: 16, hasTop: true, numClasses: 10, warnings: [] })
      expect(loaded.preprocessing).toEqual(CAFFE_PREPROCESSING)
      expect(vggWeightsDiffer(loaded.weights, weights16)).toBeUndefined()
    })
  }

  it('notop file and full-model file', async () => {
    const notop = randomVggWeights({ ...small, top: 'notop', seed: 8 })
    const path = join(dir, 'vgg16_notop.h5')
    await writeKerasFile(path, notop, { style: 'keras1' })
    const loaded = await loadVggWeights(path, small)
    expect(loaded).toMatchObject({ hasTop: false, numClasses: undefined })
    expect(vggWeightsDiffer(loaded.weights, notop)).toBeUndefined()
    const full = join(dir, 'model.h5')
    await writeKerasFile(full, weights16, { fullModel: true })
    expect(vggWeightsDiffer((await loadVggWeights(full, small)).weights, weights16)).toBeUndefined()
  })

  it('names the dataset at fault: missing layer, wrong shape, NaN, truncation', async () => {
    const noFc2 = new Map(weights16)
    noFc2.delete('fc2')
    const missing = join(dir, 'missing.h5')
    await writeKerasFile(missing, noFc2)
    await expect(loadVggWeights(missing, small)).rejects.toThrow(/missing\.h5: missing tensor fc2\/kernel \(layer fc2\)/)

    await expect(loadVggWeights(join(dir, 'vgg16_keras2.h5'), { depth: 16, widthDivisor: 8 })).rejects.toThrow(
      /vgg16_keras2\.h5: tensor \/block1_conv1\/block1_conv1\/kernel:0 has shape \[3,3,3,4\], expected \[3,3,3,8\] for VGG16 \(width \/ 8\) layer block1_conv1/
    )

    const poisoned = new Map(weights16)
    const fc2 = weights16.get('fc2')
    if (!fc2) throw new Error('no fc2')
    const kernel = fc2.kernel.slice()
    kernel[1234] = NaN
    poisoned.set('fc2', { ...fc2, kernel })
    const nan = join(dir, 'nan.h5')
    await writeKerasFile(nan, poisoned, { style: 'keras1' })
    await expect(loadVggWeights(nan, small)).rejects.toThrow(/nan\.h5: tensor \/fc2\/fc2_W_1:0 contains NaN \(at flat index 1234\)/)

    const cut = join(dir, 'cut.h5')
    const bytes = await readFile(join(dir, 'vgg16_keras2.h5'))
    await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length / 2)))
    await expect(loadVggWeights(cut, small)).rejects.toThrow(/cut\.h5: file is truncated/)
  })
})

describe('errors', () => {
  it('truncated safetensors names the tensor that runs past the end', async () => {
    const path = await torchFile(weights16)
    const bytes = await readFile(path)
    await writeFile(path, bytes.subarray(0, bytes.length - 100))
    await expect(loadVggWeights(path, small)).rejects.toThrow(/^weights\.safetensors: file is truncated: tensor classifier\.6\.weight needs bytes/)
  })

  it('bad safetensors headers', async () => {
    const path = await torchFile(weights16)
    const bytes = new Uint8Array(await readFile(path))
    new DataView(bytes.buffer).setUint32(0, bytes.length, true)
    await writeFile(path, bytes)
    await expect(loadVggWeights(path, small)).rejects.toThrow(/weights\.safetensors: safetensors header length \d+ exceeds the file size/)
    new DataView(bytes.buffer).setUint32(0, 40, true)
    await writeFile(path, bytes)
    await expect(loadVggWeights(path, small)).rejects.toThrow(/weights\.safetensors: invalid safetensors header: not valid JSON/)
  })

  it('missing, wrong-shaped and unexpected tensors', async () => {
    const missing = await torchFile(weights16, { edit: (t) => t.delete('classifier.3.weight') })
    await expect(loadVggWeights(missing, small)).rejects.toThrow(/^weights\.safetensors: missing tensor classifier\.3\.weight \(layer fc2\)$/)

    const fc1Only = await torchFile(weights16, {
      edit: (t) => ['classifier.3.weight', 'classifier.3.bias', 'classifier.6.weight', 'classifier.6.bias'].forEach((n) => t.delete(n))
    })
    await expect(loadVggWeights(fc1Only, small)).rejects.toThrow(/missing tensor classifier\.3\.weight \(layer fc2\) \(fc1 is present, so fc2 must be too\)/)

    const wrongShape = await torchFile(weights16, {
      edit: (t) => {
        const w = t.get('features.0.weight')
        if (w) t.set('features.0.weight', { ...w, shape: [4, 3, 3, 2], data: Array.from(w.data).slice(0, 72) })
      }
    })
    await expect(loadVggWeights(wrongShape, small)).rejects.toThrow(
      /^weights\.safetensors: tensor features\.0\.weight has shape \[4,3,3,2\], expected \[4,3,3,3\] for VGG16 \(width \/ 16\) layer block1_conv1$/
    )

    const extra = await torchFile(weights16, { edit: (t) => t.set('classifier.9.weight', { dtype: 'F32', shape: [2], data: [1, 2] }) })
    await expect(loadVggWeights(extra, small)).rejects.toThrow(/weights\.safetensors: unexpected tensor classifier\.9\.weight: not part of a VGG16/)
  })

  it('shapes are checked against the real VGG when no width divisor is given', async () => {
    await expect(loadVggWeights(await torchFile(weights16), { depth: 16 })).rejects.toThrow(
      /tensor features\.0\.weight has shape \[4,3,3,3\], expected \[64,3,3,3\] for VGG16 layer block1_conv1/
    )
  })

  it('NaN and Inf values, naming the tensor', async () => {
    const nan = await torchFile(weights16, {
      edit: (t) => {
        const w = t.get('classifier.3.weight')
        if (w) t.set('classifier.3.weight', { ...w, data: Float32Array.from(w.data, (v, i) => (i === 5 ? NaN : v)) })
      }
    })
    await expect(loadVggWeights(nan, small)).rejects.toThrow(/^weights\.safetensors: tensor classifier\.3\.weight contains NaN \(at flat index 5\)$/)
    const inf = await torchFile(weights16, {
      edit: (t) => {
        const b = t.get('features.2.bias')
        if (b) t.set('features.2.bias', { ...b, data: Float32Array.from(b.data, (v, i) => (i === 1 ? -Infinity : v)) })
      }
    })
    await expect(loadVggWeights(inf, small)).rejects.toThrow(/tensor features\.2\.bias contains -Infinity \(at flat index 1\)/)
    // 1e6 overflows float16 to infinity.
    const overflow = await torchFile(mapValues(weights16, (v) => v * 1e6), { dtype: 'F16' })
    await expect(loadVggWeights(overflow, small)).rejects.toThrow(/tensor features\.0\.weight contains -?Infinity/)
  })

  it('batch-norm state dicts are rejected', async () => {
    const path = join(dir, 'vgg16_bn.safetensors')
    await writeSafetensors(path, batchNormStateDict(small))
    await expect(loadVggWeights(path, small)).rejects.toThrow(
      /vgg16_bn\.safetensors: batch-norm VGG \(e\.g\. vgg16_bn\) is not supported: found features\.1\.running_mean/
    )
  })

  it('depth mismatch and non-VGG state dicts', async () => {
    const vgg19 = await torchFile(randomVggWeights({ depth: 19, widthDivisor: 16, seed: 9 }), { depth: 19 })
    await expect(loadVggWeights(vgg19, small)).rejects.toThrow(/holds VGG19 weights \(16 conv layers\), but VGG16 was requested/)
    const other = join(dir, 'resnet.safetensors')
    await writeSafetensors(other, { 'conv1.weight': { dtype: 'F32', shape: [1], data: [1] } })
    await expect(loadVggWeights(other)).rejects.toThrow(/resnet\.safetensors: not a torchvision or timm VGG state dict \(tensors: conv1\.weight\)/)
  })

  it('unknown formats', async () => {
    const unknown = /unknown weight format: not safetensors, HDF5, or a TF\.js model folder/
    const bin = join(dir, 'weights.bin')
    await writeFile(bin, new Uint8Array(64).map((_, i) => (i * 37) % 251))
    await expect(loadVggWeights(bin)).rejects.toThrow(new RegExp(`^weights\\.bin: ${unknown.source}$`))
    const empty = join(dir, 'empty-folder')
    await mkdir(empty)
    await expect(loadVggWeights(empty)).rejects.toThrow(/empty-folder: unknown weight format.*\(folder has no model\.json\)/)
    const pth = join(dir, 'vgg16.pth')
    await writeFile(pth, Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0, 0]))
    await expect(loadVggWeights(pth)).rejects.toThrow(/vgg16\.pth: unknown weight format.*PyTorch \.pth checkpoints/)
    const pickle = join(dir, 'old.pt')
    await writeFile(pickle, Uint8Array.from([0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20]))
    await expect(loadVggWeights(pickle)).rejects.toThrow(/old\.pt: unknown weight format.*Python pickle/)
    const fakeH5 = join(dir, 'fake.h5')
    await writeFile(fakeH5, 'not hdf5 at all')
    await expect(loadVggWeights(fakeH5)).rejects.toThrow(/fake\.h5: not a valid HDF5 file: no HDF5 signature/)
    await expect(loadVggWeights(join(dir, 'nope.safetensors'))).rejects.toThrow(/nope\.safetensors: no such file or folder/)
  })

  it('detectWeightFormat', async () => {
    expect(await detectWeightFormat(await torchFile(weights16, {}, 'model.bin'))).toBe('safetensors')
    expect(await detectWeightFormat(join(dir, 'vgg16_keras1.h5'))).toBe('keras-h5')
  })
})
