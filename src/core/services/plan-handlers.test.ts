import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Studio } from './studio'
import type { LayerPlan } from '../../shared/layer-plan-schema'
import { randomVggWeights, writeKerasFile } from '../../../test/generators/vgg-weight-files'

let dir: string
let studio: Studio

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-plans-'))
  studio = await Studio.open({ dataDir: dir, transport: 'cli', heartbeatSeconds: 0 })
})
afterAll(async () => {
  await studio.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

describe('the layer picker through the contract', () => {
  it('makes a preset plan and evaluates its totals', async () => {
    const made = await studio.call('plans.make', { preset: 'last-block-head', numClasses: 3, inputSize: 32 })
    expect(made.ok).toBe(true)
    if (!made.ok) return
    const plan = made.result as LayerPlan
    expect(plan.layers.block5_conv1).toBe('train+wn')
    expect(plan.layers.block4_conv3).toBe('frozen')
    const evaluated = await studio.call('plans.evaluate', { plan })
    expect(evaluated).toMatchObject({ ok: true, result: { problems: [], totals: { batchSize: 32 } } })
  })

  it('returns rule problems with their field, and refuses malformed plans naming the layer', async () => {
    const made = await studio.call('plans.make', { preset: 'head-only', numClasses: 2, inputSize: 64 })
    if (!made.ok) throw new Error(made.error.message)
    const plan = { ...(made.result as LayerPlan), layers: { ...(made.result as LayerPlan).layers, block1_conv1: 'frozen+wn' as const } }
    const evaluated = await studio.call('plans.evaluate', { plan })
    if (!evaluated.ok) throw new Error(evaluated.error.message)
    expect((evaluated.result as { problems: { field: string }[] }).problems.map((p) => p.field)).toContain('layers.block1_conv1')

    const malformed = await studio.call('plans.evaluate', { plan: { ...plan, layers: { ...plan.layers, block5_conv1: 'sometimes' } } })
    expect(malformed).toMatchObject({ ok: false, error: { code: 'invalid_input' } })
    if (!malformed.ok) expect(malformed.error.fields?.map((f) => f.path)).toContain('plan.layers.block5_conv1')
  })
})

describe('weights.inspect', () => {
  it('says what a weights file holds, and names the file when it is not one', async () => {
    const file = path.join(dir, 'vgg11_notop.h5')
    await writeKerasFile(file, randomVggWeights({ depth: 11, top: 'notop' }))
    const info = await studio.call('weights.inspect', { path: file })
    expect(info).toMatchObject({ ok: true, result: { source: 'keras', depth: 11, hasTop: false, preprocessing: { kind: 'caffe', channelOrder: 'BGR' } } })

    const junk = path.join(dir, 'junk.safetensors')
    fs.writeFileSync(junk, 'definitely not weights')
    const refused = await studio.call('weights.inspect', { path: junk })
    expect(refused).toMatchObject({ ok: false, error: { code: 'invalid_input', fields: [{ path: 'path' }] } })
    if (!refused.ok) expect(refused.error.message).toMatch(/^junk\.safetensors: /)
  })
})
