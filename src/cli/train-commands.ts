import path from 'node:path'
import { Command, InvalidArgumentError, Option } from 'commander'
import { PLAN_PRESET_NAMES, WEIGHT_NORM_CHOICES, type PlanPresetName, type WeightNormChoice } from '../shared/layer-plan-schema'
import type { RunProgress } from '../shared/training'
import { planTotals, validatePlan, makePlan } from '../core/model/layer-plan'
import { withStudio, type CommonOptions } from './dataset-commands'

function integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`)
    return n
  }
}

function positive(name: string) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`)
    return n
  }
}

function inputSize(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 32 || n > 224 || n % 32 !== 0) throw new InvalidArgumentError('must be a multiple of 32 from 32 to 224')
  return n
}

function weightNorm(value: string): WeightNormChoice {
  if (!(WEIGHT_NORM_CHOICES as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${WEIGHT_NORM_CHOICES.join(', ')}`)
  return value as WeightNormChoice
}

function preset(value: string): PlanPresetName {
  if (!(PLAN_PRESET_NAMES as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${PLAN_PRESET_NAMES.join(', ')}`)
  return value as PlanPresetName
}

function depth(value: string): 11 | 13 | 16 | 19 {
  const n = Number(value)
  if (![11, 13, 16, 19].includes(n)) throw new InvalidArgumentError('must be 11, 13, 16 or 19')
  return n as 11 | 13 | 16 | 19
}

function humanCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n)
}

function progressLine(p: RunProgress): string | null {
  if (p.type === 'preparing') return `preparing: ${p.stage} ${p.done}/${p.total}`
  if (p.type === 'step') {
    const eta = p.etaSeconds === null ? '' : `  ETA ${p.etaSeconds}s`
    return `epoch ${p.epoch} step ${p.step}/${p.stepsPerEpoch}  loss ${p.loss.toFixed(4)}  acc ${(p.accuracy * 100).toFixed(1)}%  lr ${p.learningRate.toExponential(2)}  ${p.imagesPerSec.toFixed(1)} img/s${eta}`
  }
  if (p.type === 'epoch') {
    const val = p.valLoss === null ? '' : `  val loss ${p.valLoss.toFixed(4)}  val acc ${((p.valAccuracy ?? 0) * 100).toFixed(1)}%`
    return `epoch ${p.epoch} done in ${p.seconds.toFixed(1)}s: loss ${p.trainLoss.toFixed(4)}  acc ${(p.trainAccuracy * 100).toFixed(1)}%${val}`
  }
  if (p.type === 'started') return `training on ${p.backend}: ${p.trainImages} training and ${p.validationImages} validation images, ${p.stepsPerEpoch} steps per epoch${p.warnings.length ? `\n  ${p.warnings.join('\n  ')}` : ''}`
  return null
}

interface PlanFlags {
  plan: PlanPresetName
  depth: 11 | 13 | 16 | 19
  inputSize: number
  weightNorm: WeightNormChoice
  fcWidth?: number
  dropout?: number
}

function planOptions(command: Command): Command {
  return command
    .addOption(new Option('--plan <preset>', `which layers train: ${PLAN_PRESET_NAMES.join(', ')}`).argParser(preset).default('last-block-head'))
    .addOption(new Option('--depth <n>', 'VGG11, 13, 16 or 19').argParser(depth).default(16))
    .addOption(new Option('--input-size <n>', 'image side, a multiple of 32 from 32 to 224').argParser(inputSize).default(224))
    .addOption(new Option('--weight-norm <which>', `weight normalization: ${WEIGHT_NORM_CHOICES.join(', ')} ('all' = every trained layer)`).argParser(weightNorm).default('trained'))
    .option('--fc-width <n>', 'width of fc1 and fc2 (default 4096 at 224, 512 below)', integer('--fc-width', 1))
    .option('--dropout <p>', 'dropout after fc1 and fc2 (default 0.5)', Number)
}

function makePlanFromFlags(flags: PlanFlags, numClasses: number) {
  // 'all' would also mark frozen layers, which cannot carry WN: on the command line it means every trained layer.
  return makePlan(flags.plan, {
    numClasses,
    depth: flags.depth,
    inputSize: flags.inputSize,
    weightNorm: flags.weightNorm === 'all' ? 'trained' : flags.weightNorm,
    fcWidth: flags.fcWidth,
    dropout: flags.dropout
  })
}

export function trainCommands(dataDirOption: () => Option): Command[] {
  const train = planOptions(new Command('train'))
    .description('fine-tune on a dataset and record the run (progress on stderr)')
    .addOption(dataDirOption())
    .option('--data <dir>', 'a folder with one subfolder per class (imported first)')
    .option('--dataset <id>', 'a dataset already in the studio', integer('--dataset', 1))
    .option('--weights <file>', "pretrained weights (.safetensors, .h5, TF.js folder) or 'none'", 'none')
    .addOption(new Option('--optimizer <kind>', 'sgd, adam or adamw').choices(['sgd', 'adam', 'adamw']).default('adam'))
    .option('--lr <rate>', 'learning rate', positive('--lr'), 0.001)
    .addOption(new Option('--schedule <kind>', 'learning-rate schedule').choices(['constant', 'step', 'cosine']).default('cosine'))
    .option('--batch-size <n>', 'images per step', integer('--batch-size', 1, 512), 32)
    .option('--epochs <n>', 'passes over the training images', integer('--epochs', 1, 1000), 10)
    .option('--seed <n>', 'makes the run repeatable', integer('--seed', 0), 1)
    .option('--no-flip', 'no horizontal flip augmentation')
    .addOption(new Option('--backend <name>', 'force a backend').choices(['wasm', 'cpu', 'tensorflow', 'tensorflow-gpu']))
    .option('--name <name>', 'name of the run')
    .option('--json', 'end with one JSON object: runId, status, final metrics')
    .action(
      async (
        opts: CommonOptions &
          PlanFlags & {
            data?: string
            dataset?: number
            weights: string
            optimizer: 'sgd' | 'adam' | 'adamw'
            lr: number
            schedule: 'constant' | 'step' | 'cosine'
            batchSize: number
            epochs: number
            seed: number
            flip: boolean
            backend?: 'wasm' | 'cpu' | 'tensorflow' | 'tensorflow-gpu'
            name?: string
          }
      ) => {
        if ((opts.data === undefined) === (opts.dataset === undefined)) throw new Error('give either --data DIR or --dataset ID')
        await withStudio(opts, async (call, studio) => {
          let datasetId = opts.dataset
          if (opts.data !== undefined) {
            const name = path.basename(path.resolve(opts.data))
            const existing = (await call('datasets.list')).find((d) => d.name === name)?.id
            const imported = await studio.imports.runToEnd(existing !== undefined ? { datasetId: existing } : { newDatasetName: name }, { kind: 'folder', path: opts.data })
            datasetId = imported.datasetId
            if (!opts.json) process.stderr.write(`dataset ${datasetId} "${name}": ${imported.imported} new images, ${imported.alreadyPresent} already there, ${imported.rejected} rejected\n`)
          }
          const stats = await call('datasets.stats', { datasetId: datasetId as number })
          const classes = stats.classes.filter((c) => c.count > 0).length
          if (classes < 2) {
            throw new Error(`dataset ${datasetId} "${stats.dataset.name}" has ${classes === 0 ? 'no labelled images' : 'only one class with images'}: training needs at least two classes`)
          }
          const plan = makePlanFromFlags(opts, classes)
          studio.onEvent((e) => {
            if (e.event !== 'run.progress' || opts.json) return
            const line = progressLine(e.payload)
            if (line) process.stderr.write(`${line}\n`)
          })
          const run = await call('runs.start', {
            datasetId: datasetId as number,
            name: opts.name,
            plan,
            weightsPath: opts.weights === 'none' ? null : opts.weights,
            backend: opts.backend,
            hyperparameters: {
              optimizer: opts.optimizer,
              learningRate: opts.lr,
              schedule: opts.schedule,
              batchSize: opts.batchSize,
              epochs: opts.epochs,
              seed: opts.seed,
              augmentation: { flip: opts.flip, crop: 0, rotationDegrees: 0, brightness: 0, contrast: 0 }
            }
          })
          await studio.training.settled(run.id)
          const final = await call('runs.get', { runId: run.id })
          if (opts.json) {
            console.log(JSON.stringify({ runId: final.id, datasetId, status: final.status, backend: final.backend, failureReason: final.failureReason, epochs: final.epochsCompleted, final: final.latest }))
          } else {
            console.log(`run ${final.id}: ${final.status}${final.failureReason ? ` (${final.failureReason})` : ''}`)
          }
          if (final.status !== 'completed') process.exitCode = 1
        })
      }
    )

  const inspect = planOptions(new Command('inspect'))
    .description("a layer plan's totals: parameters, memory, FLOPs, and its problems")
    .addOption(dataDirOption())
    .requiredOption('--classes <n>', 'number of classes of the new head', integer('--classes', 2))
    .option('--batch-size <n>', 'images per step, for the memory estimate', integer('--batch-size', 1, 4096), 32)
    .option('--json', 'print JSON')
    .action((opts: PlanFlags & { classes: number; batchSize: number; json?: boolean }) => {
      const plan = makePlanFromFlags(opts, opts.classes)
      const totals = planTotals(plan, { batchSize: opts.batchSize })
      const check = validatePlan(plan)
      if (opts.json) return console.log(JSON.stringify({ plan, totals, ...check }))
      console.log(`VGG${plan.depth} @${plan.inputSize}, ${opts.plan}, ${plan.numClasses} classes`)
      for (const row of totals.layers.filter((l) => l.mode !== null)) {
        console.log(`  ${row.name.padEnd(14)} ${String(row.mode).padEnd(10)} ${humanCount(row.params).padStart(9)} params  ${humanCount(row.forwardFlops).padStart(9)}FLOPs`)
      }
      console.log(`parameters: ${humanCount(totals.params.trainable)} trainable, ${humanCount(totals.params.total - totals.params.trainable)} frozen`)
      console.log(`FLOPs per image: ${humanCount(totals.flops.forward)} forward, ${humanCount(totals.flops.train)} training`)
      console.log(`memory at batch ${opts.batchSize}: ${(totals.memory.total / 2 ** 20).toFixed(0)} MiB`)
      for (const p of check.problems) console.log(`problem  ${p.field}: ${p.message}`)
      for (const w of check.warnings) console.log(`warning  ${w.field}: ${w.message}`)
      if (check.problems.length) process.exitCode = 1
    })

  return [train, inspect]
}
