import { test, expect, type Locator, type Page } from '@playwright/test'
import path from 'node:path'
import { startStudio, type RunningStudio } from './studio-server'
import { callFromPage } from './page-api'
import { writeImageFolder } from '../generators/images'
import { randomVggWeights, writeKerasFile } from '../generators/vgg-weight-files'
import type { LayerPlan } from '../../src/shared/layer-plan-schema'
import { shot } from './ui-helpers'

let studio: RunningStudio
let pets: string
let vgg11: string

test.beforeAll(async () => {
  studio = await startStudio()
  pets = path.join(studio.dataDir, 'incoming', 'pets')
  await writeImageFolder(pets, { classes: ['cat', 'dog', 'bird'], perClass: 4, size: 32, seed: 3 })
  // Random weights in Keras' layout (no pretrained weights can be downloaded here): VGG11 convs only.
  vgg11 = path.join(studio.dataDir, 'vgg11_weights_tf_dim_ordering_tf_kernels_notop.h5')
  await writeKerasFile(vgg11, randomVggWeights({ depth: 11, top: 'notop' }))
})

test.afterAll(async () => {
  await studio?.stop()
})


/** The plan the view keeps for the Train view (the store persists it to localStorage). */
function storedPlan(page: Page): Promise<LayerPlan> {
  return page.evaluate(() => JSON.parse(localStorage.getItem('finetune-studio:plan') ?? 'null') as LayerPlan)
}

/** A Naive UI radio button by its exact label. */
function radio(scope: Locator | Page, label: string): Locator {
  const exact = new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)
  return scope.locator('label.n-radio-button', { hasText: exact })
}


test('layer picker: preset + WN, live totals equal to plans.evaluate, issues at their layer, input size, weights errors', async ({ page }) => {
  test.setTimeout(60_000)
  await page.setViewportSize({ width: 1440, height: 1900 })
  await page.goto(studio.openUrl)
  await page.keyboard.press('Alt+3')
  await expect(page.getByRole('heading', { name: 'Model', level: 1 })).toBeVisible()

  // No dataset: the view says what to do first, and the plan can still be explored (10 classes).
  await expect(page.getByTestId('model-empty')).toContainText('Import and label a dataset first')
  await expect(page.getByTestId('layer-predictions')).toContainText('dense 4096 → 10')

  // A dataset of three classes arrives (imported through the contract): the head follows it.
  await callFromPage(page, 'imports.start', { newDatasetName: 'Pets', source: { kind: 'folder', path: pets } })
  await expect.poll(async () => (await callFromPage(page, 'datasets.list'))[0]?.labelledCount, { timeout: 20_000 }).toBe(12)
  await expect(page.getByTestId('model-empty')).toBeHidden()
  await expect(page.getByTestId('head-classes')).toContainText('3 classes')
  await expect(page.getByTestId('layer-predictions')).toContainText('New layer for 3 classes: bird, cat, dog')

  // "Last block + classifier" with WN on the trained layers.
  await radio(page, 'Head only').click()
  await radio(page, 'Last block + classifier').click()
  await radio(page, 'On trained layers').click()
  for (const name of ['block5_conv1', 'block5_conv2', 'block5_conv3', 'fc1', 'fc2', 'predictions']) {
    const row = page.getByTestId(`layer-${name}`)
    await expect(row).toHaveAttribute('data-mode', 'train+wn')
    await expect(row.getByTestId('mode-text')).toHaveText('train + WN')
    await expect(row.getByRole('radio', { name: 'Train + WN' })).toBeChecked()
    await expect(row.getByTestId('wn-badge')).toBeVisible()
  }
  for (const name of ['block4_conv1', 'block4_conv2', 'block4_conv3', 'block1_conv1']) {
    const row = page.getByTestId(`layer-${name}`)
    await expect(row).toHaveAttribute('data-mode', 'frozen')
    await expect(row.getByRole('radio', { name: 'Frozen' })).toBeChecked()
    await expect(row.getByTestId('wn-badge')).toHaveCount(0)
  }

  // The plan the view holds is exactly what plans.make gives, and the trainable total shown is
  // what plans.evaluate computes for it. By hand, VGG16 at 224 with 3 classes, WN adding one g
  // per output channel: block5_conv1..3 = 3 × (3·3·512·512 + 512 + 512) = 7,080,960;
  // fc1 = 25088·4096 + 4096 + 4096 = 102,768,640; fc2 = 4096·4096 + 8192 = 16,785,408;
  // predictions = 4096·3 + 3 + 3 = 12,294; total 126,647,302.
  const made = await callFromPage(page, 'plans.make', { preset: 'last-block-head', numClasses: 3, weightNorm: 'trained' })
  await expect.poll(() => storedPlan(page)).toEqual(made)
  const evaluated = await callFromPage(page, 'plans.evaluate', { plan: made })
  expect(evaluated.totals.params.trainable).toBe(126_647_302)
  const trainable = page.getByTestId('total-trainable')
  await expect(trainable).toHaveAttribute('data-value', String(evaluated.totals.params.trainable))
  await expect(trainable).toHaveText('126.6 M')
  await expect(page.getByTestId('total-trainable-exact')).toContainText('126,647,302 trainable')
  await expect(page.getByTestId('total-forward')).toHaveText('30.9 GFLOPs')
  await expect(page.getByTestId('plan-problems')).toHaveCount(0)
  // WN on fc1/fc2 at 224 is legal but costly: a soft warning at each of them.
  await expect(page.getByTestId('layer-fc1').getByTestId('issues-layers.fc1')).toContainText('WN on fc1 at 224 costs a norm over 102.8M weights')
  await expect(page.getByTestId('plan-warnings')).toContainText('2 warnings')
  await expect(page.getByTestId('use-plan')).toBeEnabled()
  await shot(page, 'model.png')

  // Keyboard: the mode of a layer is a radio group; arrows move through frozen / train / train + WN.
  const conv1 = page.getByTestId('layer-block1_conv1')
  await conv1.getByRole('radio', { name: 'Frozen' }).focus()
  await page.keyboard.press('ArrowRight')
  await expect(conv1).toHaveAttribute('data-mode', 'train')
  await page.keyboard.press('ArrowRight')
  await expect(conv1).toHaveAttribute('data-mode', 'train+wn')
  await expect(page.getByTestId('preset-edited')).toBeVisible()
  // Training block1 under frozen blocks 2–4: the warnings appear at the layers they concern.
  await expect(conv1.getByTestId('issues-layers.block1_conv1')).toContainText('training block1 with frozen later blocks (block2, block3, block4)')
  await expect(page.getByTestId('layer-block1_conv2').getByTestId('issues-layers.block1_conv2')).toContainText('stay frozen between trainable layers')
  await expect(page.getByTestId('plan-warnings')).toContainText('4 warnings')
  await expect(page.getByTestId('use-plan')).toBeEnabled()
  await expect(trainable).not.toHaveAttribute('data-value', String(evaluated.totals.params.trainable))

  // A problem blocks the plan, shown where it is: freezing everything leaves nothing to train.
  await page.getByRole('button', { name: 'Freeze block1' }).click()
  await page.getByRole('button', { name: 'Freeze block5' }).click()
  await page.getByRole('button', { name: 'Freeze the classifier' }).click()
  await expect(page.getByTestId('issues-layers')).toContainText('nothing trains')
  await expect(page.getByTestId('plan-problems')).toContainText('1 problem')
  await expect(page.getByTestId('use-plan')).toBeDisabled()
  await page.getByRole('button', { name: 'Train block5' }).click()
  await page.getByRole('button', { name: 'Train the classifier' }).click()
  await expect(page.getByTestId('plan-problems')).toHaveCount(0)
  await expect(page.getByTestId('layer-block5_conv2')).toHaveAttribute('data-mode', 'train+wn')

  // Input size 32: the classifier is rebuilt (512 wide, new), the totals follow.
  const before = await trainable.getAttribute('data-value')
  await radio(page.locator('[data-field="inputSize"]'), '32').click()
  await expect(page.getByTestId('pretrained-fc-note')).toContainText('the pretrained fc1/fc2 cannot be used')
  await expect(page.getByTestId('layer-fc1')).toContainText('dense 512 → 512')
  await expect(trainable).not.toHaveAttribute('data-value', before ?? '')
  const small = await storedPlan(page)
  expect(small).toMatchObject({ inputSize: 32, fcWidth: 512, pretrainedFc: false })
  const smallTotals = (await callFromPage(page, 'plans.evaluate', { plan: small })).totals
  await expect(trainable).toHaveAttribute('data-value', String(smallTotals.params.trainable))
  await expect(page.getByTestId('total-train-flops')).not.toHaveText('30.9 GFLOPs')

  // Asking for ImageNet's fc1/fc2 at 32 is a problem, shown at the classifier's settings.
  await page.getByTestId('pretrained-fc').click()
  await expect(page.getByTestId('issues-pretrainedFc')).toContainText('pretrained fc1/fc2 (ImageNet weights) fit only input size 224')
  await expect(page.getByTestId('use-plan')).toBeDisabled()
  await page.getByTestId('block-classifier').scrollIntoViewIfNeeded()
  await shot(page, 'model-problem.png')
  await page.getByTestId('pretrained-fc').click()
  await expect(page.getByRole('textbox', { name: 'fc width' })).toHaveValue('512')
  await expect(page.getByTestId('plan-problems')).toHaveCount(0)

  // A weights file that is not there: the error is under the field and names the file.
  await page.getByRole('textbox', { name: 'Weights file path' }).fill('/nowhere/vgg16.safetensors')
  await page.getByTestId('weights-inspect').click()
  await expect(page.getByTestId('weights-error')).toHaveText('vgg16.safetensors: no such file or folder')

  // A real file: what it holds and the preprocessing it implies; its depth must match the plan's.
  await page.getByRole('textbox', { name: 'Weights file path' }).fill(vgg11)
  await page.getByTestId('weights-inspect').click()
  const facts = page.getByTestId('weights-info')
  await expect(facts).toContainText('Keras')
  await expect(facts).toContainText('VGG11')
  await expect(facts).toContainText('no top')
  await expect(facts).toContainText('BGR, subtract the caffe means (103.939, 116.779, 123.68)')
  await expect(page.getByTestId('issues-weights')).toContainText('the file holds VGG11 weights but the plan builds VGG16')
  await expect(page.getByTestId('use-plan')).toBeDisabled()
  await radio(page, 'VGG11').click()
  await expect(page.getByTestId('block-block3')).toContainText('2 × conv 3×3')
  await expect(page.getByTestId('layer-block3_conv3')).toHaveCount(0)
  await expect(page.getByTestId('issues-weights')).toHaveCount(0)
  await expect(page.getByTestId('use-plan')).toBeEnabled()

  // Everything is kept across a reload. A stored plan with WN on a frozen layer (what WN "all"
  // gives) is a problem at that layer, resolved there in one click.
  await page.evaluate(() => {
    const plan = JSON.parse(localStorage.getItem('finetune-studio:plan') ?? '{}') as { layers: Record<string, string> }
    plan.layers.block2_conv1 = 'frozen+wn'
    localStorage.setItem('finetune-studio:plan', JSON.stringify(plan))
  })
  await page.reload()
  await expect(page.getByTestId('layer-block5_conv1')).toHaveAttribute('data-mode', 'train+wn')
  await expect(page.getByTestId('layer-block1_conv1')).toHaveAttribute('data-mode', 'frozen')
  await expect(page.getByRole('textbox', { name: 'Weights file path' })).toHaveValue(vgg11)
  await expect(facts).toContainText('VGG11')
  const wnFrozen = page.getByTestId('layer-block2_conv1')
  await expect(wnFrozen.getByTestId('issues-layers.block2_conv1')).toContainText('block2_conv1: weight normalization applies only to a layer that trains')
  await expect(page.getByTestId('plan-problems')).toContainText('1 problem')
  await expect(page.getByTestId('use-plan')).toBeDisabled()
  await radio(wnFrozen, 'Frozen').click()
  await expect(wnFrozen).toHaveAttribute('data-mode', 'frozen')
  await expect(page.getByTestId('plan-problems')).toHaveCount(0)

  await page.emulateMedia({ colorScheme: 'dark' })
  await page.waitForTimeout(700) // Naive UI fades between themes
  await shot(page, 'model-dark.png')

  // "Use this plan" hands the plan to the Train view.
  await page.getByTestId('use-plan').click()
  await expect(page).toHaveURL(/#\/train$/)
  const used = await page.evaluate(() => JSON.parse(localStorage.getItem('finetune-studio:plan-used') ?? 'null') as unknown)
  expect(used).toEqual(await storedPlan(page))
})
