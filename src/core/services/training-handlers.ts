import type { MetricSeries } from '../../shared/training'
import type { Database } from '../store/db'
import { getRun } from '../store/runs-repo'
import type { ServiceHandlers } from './dispatch'
import type { TrainingService } from './training-service'

type TrainingMethods = 'runs.start' | 'runs.list' | 'runs.get' | 'runs.metrics' | 'runs.pause' | 'runs.resume' | 'runs.stop'

export function trainingHandlers(db: Database, training: TrainingService): Pick<ServiceHandlers, TrainingMethods> {
  return {
    'runs.start': (input) => training.start(input),
    'runs.list': () => training.list(),
    'runs.get': ({ runId }) => training.get(runId),
    'runs.metrics': async ({ runId, names }) => {
      await getRun(db, runId)
      const rows = await db.all<{ name: string; step: number; epoch: number; value: number; time: number }>(
        names?.length
          ? 'SELECT name, step, epoch, value, time FROM metrics WHERE run_id = ? AND name IN (SELECT value FROM json_each(?)) ORDER BY name, step'
          : 'SELECT name, step, epoch, value, time FROM metrics WHERE run_id = ? ORDER BY name, step',
        names?.length ? [runId, JSON.stringify(names)] : [runId]
      )
      const series = new Map<string, MetricSeries>()
      for (const { name, ...point } of rows) {
        if (!series.has(name)) series.set(name, { name, points: [] })
        series.get(name)?.points.push(point)
      }
      return [...series.values()]
    },
    'runs.pause': async ({ runId }) => ({ ok: training.control(runId, 'pause') }),
    'runs.resume': async ({ runId }) => ({ ok: training.control(runId, 'resume') }),
    'runs.stop': async ({ runId }) => ({ ok: training.control(runId, 'cancel') })
  }
}
