/**
 * A worker thread's replica (see data-parallel.ts): builds the same model as the main thread
 * from the spec, then for each `step` computes the gradients of its share into the exchange,
 * and for each `apply` applies the average of every replica's gradients.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { loadVggWeights } from '../weights/load-weights'
import { loadCheckpoint } from './checkpoint'
import { GradientExchange, type ReplicaCommand, type ReplicaInit, type ReplicaReply } from './data-parallel'
import { FeatureStore, NetworkInputs } from './feature-cache'
import { buildTrainingModel, disposeGradients, Replica } from './replica'
import { selectBackend } from './select-backend'

async function start(init: ReplicaInit, send: (reply: ReplicaReply) => void): Promise<(command: ReplicaCommand) => void> {
  const { spec } = init
  await selectBackend({ forced: init.backend })
  const loaded = spec.weights !== null && init.resumeFrom === null ? await loadVggWeights(spec.weights.path, { depth: spec.model.depth }) : null
  const { model } = buildTrainingModel(spec, loaded, init.resumeFrom !== null)
  const replica = new Replica(spec, model, init.weightsPerClass, init.index)
  if (init.resumeFrom !== null) replica.restore(await loadCheckpoint(init.resumeFrom))
  const features = init.trainFeatures
  const store = features === null ? null : FeatureStore.fromShared(init.train.count, features.shape, features.buffers)
  replica.feed(new NetworkInputs(replica.split, init.preprocessing, spec.augmentation), { set: init.train, store }, null)
  const exchange = new GradientExchange(init.exchange.buffer, init.exchange.shapes, init.exchange.replicas)
  const variables = replica.optimizer.variables

  return (command) => {
    if (command.type === 'step') {
      if (command.indices.length === 0) return send({ type: 'grads', loss: 0, correct: 0, weight: 0 })
      const g = replica.gradients(command.indices, command.epoch, command.step)
      try {
        exchange.write(init.index, command.parity, variables.map((v) => g.grads[v.variable.name]))
        return send({ type: 'grads', loss: g.loss.dataSync()[0], correct: g.correct.dataSync()[0], weight: g.weight })
      } finally {
        disposeGradients(g)
      }
    }
    replica.optimizer.applyEach((_v, i) => exchange.average(command.weights, command.parity, i), command.learningRate)
  }
}

const port = parentPort
if (port === null) throw new Error('replica-worker runs in a worker thread')
const send = (reply: ReplicaReply) => port.postMessage(reply)
const failed = (error: unknown) => send({ type: 'error', message: error instanceof Error ? error.message : String(error) })
start(workerData as ReplicaInit, send).then((handle) => {
  port.on('message', (command: ReplicaCommand) => {
    try {
      handle(command)
    } catch (error) {
      failed(error)
    }
  })
  send({ type: 'ready' })
}, failed)
