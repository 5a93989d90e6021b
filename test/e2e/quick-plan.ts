import type { Page } from '@playwright/test'
import { callFromPage } from './page-api'

/**
 * A plan that trains quickly, handed to the Train view as the Model view would: VGG16 at 32×32,
 * last block + a 32-wide classifier, WN on what trains, no weights file (random start). The
 * Model view keeps its plan in localStorage; the Train view trains the plan confirmed there
 * ("Use this plan"). Reload the page afterwards for the stores to read it.
 */
export async function useQuickPlan(page: Page, datasetId: number, numClasses: number): Promise<void> {
  const plan = await callFromPage(page, 'plans.make', { preset: 'last-block-head', numClasses, depth: 16, inputSize: 32, fcWidth: 32, dropout: 0, weightNorm: 'trained' })
  await page.evaluate(
    ({ plan, datasetId }) => {
      localStorage.setItem('finetune-studio:plan', JSON.stringify(plan))
      localStorage.setItem('finetune-studio:plan-used', JSON.stringify(plan))
      localStorage.setItem('finetune-studio:plan-preset', 'last-block-head')
      localStorage.setItem('finetune-studio:plan-random-init', 'true')
      localStorage.setItem('finetune-studio:plan-dataset', String(datasetId))
    },
    { plan, datasetId }
  )
}
