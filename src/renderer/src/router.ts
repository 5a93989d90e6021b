import { createRouter, createWebHashHistory, type RouteRecordRaw } from 'vue-router'
import type { Component } from 'vue'
import { ImagesOutline, PricetagsOutline, LayersOutline, PulseOutline, GitCompareOutline } from '@vicons/ionicons5'
import DatasetsView from './views/DatasetsView.vue'
import LabelView from './views/LabelView.vue'
import ModelView from './views/ModelView.vue'
import TrainView from './views/TrainView.vue'
import RunsView from './views/RunsView.vue'

export interface StudioView {
  name: string
  title: string
  subtitle: string
  icon: Component
}

/** The studio's views, in the order a user goes through them. */
export const VIEWS: StudioView[] = [
  { name: 'datasets', title: 'Datasets', subtitle: 'Import images, check them, split them', icon: ImagesOutline },
  { name: 'label', title: 'Label', subtitle: 'Give every image its class', icon: PricetagsOutline },
  { name: 'model', title: 'Model', subtitle: 'Choose what trains and what gets weight normalization', icon: LayersOutline },
  { name: 'train', title: 'Train', subtitle: 'Run fine-tuning and watch it learn', icon: PulseOutline },
  { name: 'runs', title: 'Runs', subtitle: 'Compare, evaluate and export', icon: GitCompareOutline }
]

const components: Record<string, Component> = {
  datasets: DatasetsView,
  label: LabelView,
  model: ModelView,
  train: TrainView,
  runs: RunsView
}

const routes: RouteRecordRaw[] = [
  { path: '/', redirect: '/datasets' },
  ...VIEWS.map((view) => ({ path: `/${view.name}`, name: view.name, component: components[view.name], meta: { view } }))
]

export const router = createRouter({ history: createWebHashHistory(), routes })
