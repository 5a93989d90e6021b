/**
 * The trainer child process, and `forkTrainer` to start one.
 *
 * The child owns TensorFlow.js: it waits for `{type: 'start', spec}`, validates the spec,
 * trains, and forwards every TrainerMessage to its parent; `pause` / `resume` / `cancel` act
 * between steps (cancel finishes the current step, writes nothing more, and ends with
 * `finished {status: 'cancelled'}`). One run per process: it exits when the run ends, with code
 * 0 after `finished` and 1 after `failed`. Works under `child_process.fork` (process.send /
 * process.on('message')) and under Electron's utilityProcess (process.parentPort).
 *
 * The module starts the child side only when loaded as a trainer (env FINETUNE_STUDIO_TRAINER=1,
 * which forkTrainer sets, or a utilityProcess parentPort); importing it for forkTrainer does not.
 */
import { fork } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import { isTrainerCommand, isTrainerMessage, type TrainerCommand, type TrainerMessage } from './trainer-messages'
import { formatSpecError, trainerSpecSchema } from './trainer-spec'

export const TRAINER_ENV = 'FINETUNE_STUDIO_TRAINER'

/** Electron's utilityProcess side of the channel (not in Node's types). */
interface ParentPort {
  on(event: 'message', listener: (event: { data: unknown }) => void): void
  postMessage(message: unknown): void
}

interface Channel {
  send(message: TrainerMessage): Promise<void>
  onCommand(listener: (command: unknown) => void): void
}

function parentPort(): ParentPort | undefined {
  return (process as NodeJS.Process & { parentPort?: ParentPort }).parentPort
}

function openChannel(): Channel {
  const port = parentPort()
  if (port !== undefined) {
    return {
      send: async (message) => port.postMessage(message),
      onCommand: (listener) => port.on('message', (event) => listener(event.data))
    }
  }
  const send = process.send?.bind(process)
  if (send === undefined) throw new Error('trainer-process must be started with an IPC channel (child_process.fork or utilityProcess.fork)')
  return {
    send: (message) =>
      new Promise((resolve) => {
        // A parent that has gone away cannot be told anything; the run still ends cleanly.
        if (!process.connected) return resolve()
        send(message, undefined, {}, () => resolve())
      }),
    onCommand: (listener) => process.on('message', listener)
  }
}

/** Runs the child side: call once, in the trainer process. */
export function runTrainerProcess(): void {
  const channel = openChannel()
  let started = false
  let cancelled = false
  let paused = false
  let wake: (() => void) | null = null
  /** Whether `paused` was sent for the current pause: only once the loop stops between steps. */
  let pauseAnnounced = false
  let failedSent = false
  const pending = new Set<Promise<void>>()

  const send = (message: TrainerMessage): void => {
    if (message.type === 'failed') failedSent = true
    const p = channel.send(message)
    pending.add(p)
    void p.finally(() => pending.delete(p))
  }
  const exit = async (code: number): Promise<never> => {
    await Promise.all([...pending])
    process.exit(code)
  }
  const fail = (error: unknown): Promise<never> => {
    if (!failedSent) send({ type: 'failed', message: error instanceof Error ? error.message : String(error) })
    return exit(1)
  }
  const resumeNow = () => {
    paused = false
    wake?.()
    wake = null
  }

  const start = async (specInput: unknown): Promise<void> => {
    const parsed = trainerSpecSchema.safeParse(specInput)
    if (!parsed.success) {
      await fail(new Error(`invalid training spec: ${formatSpecError(parsed.error)}`))
      return
    }
    try {
      // Loaded here, not at the top: the parent imports this module for forkTrainer and should
      // not load TensorFlow.js.
      const { train } = await import('./trainer')
      const result = await train(parsed.data, {
        onProgress: send,
        shouldStop: () => cancelled,
        waitWhilePaused: () => {
          if (!paused) return Promise.resolve()
          // Announced here, not when the command arrives: a step under way (which may be waiting
          // for its worker replicas) still finishes and reports first.
          if (!pauseAnnounced) send({ type: 'paused' })
          pauseAnnounced = true
          return new Promise<void>((resolve) => (wake = resolve))
        }
      })
      result.model.dispose()
      await exit(0)
    } catch (error) {
      await fail(error)
    }
  }

  channel.onCommand((raw) => {
    if (!isTrainerCommand(raw)) {
      void fail(new Error(`unknown command ${JSON.stringify(raw)?.slice(0, 200)}`))
      return
    }
    const command: TrainerCommand = raw
    switch (command.type) {
      case 'start':
        if (started) return
        started = true
        void start(command.spec)
        return
      case 'pause':
        if (!cancelled) paused = true
        return
      case 'resume':
        if (paused) {
          resumeNow()
          if (pauseAnnounced) send({ type: 'resumed' })
          pauseAnnounced = false
        }
        return
      case 'cancel':
        cancelled = true
        resumeNow()
        // Nothing started: nothing to finish.
        if (!started) void exit(0)
        return
    }
  })
  process.on('uncaughtException', (error) => void fail(error))
  process.on('unhandledRejection', (error) => void fail(error))
  // The parent went away (crashed or killed us off): stop rather than train for nobody.
  process.on('disconnect', () => process.exit(2))
}

// ---------------------------------------------------------------- parent side

export interface ForkTrainerOptions {
  /** Node flags for the child. Default: `--import <tsx>` when running from .ts sources, else none. */
  execArgv?: string[]
  /** The trainer entry to run (default: this file; a bundled build passes its own output). */
  modulePath?: string
  env?: NodeJS.ProcessEnv
}

export interface TrainerHandle {
  readonly pid: number | undefined
  send(command: TrainerCommand): void
  /** Subscribes to the child's messages; returns an unsubscribe function. */
  onMessage(listener: (message: TrainerMessage) => void): () => void
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): () => void
  /** Resolves when the child has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  kill(signal?: NodeJS.Signals): void
}

function thisFile(): string {
  return typeof __filename === 'string' ? __filename : new URL(import.meta.url).pathname
}

function defaultExecArgv(modulePath: string): string[] {
  if (!modulePath.endsWith('.ts')) return []
  // An absolute URL, so the child finds tsx whatever its working directory.
  return ['--import', pathToFileURL(require.resolve('tsx')).href]
}

/** Forks a trainer child process (`child_process.fork`) and returns a small handle to it. */
export function forkTrainer(options: ForkTrainerOptions = {}): TrainerHandle {
  const modulePath = options.modulePath ?? thisFile()
  const child = fork(modulePath, [], {
    execArgv: options.execArgv ?? defaultExecArgv(modulePath),
    env: { ...process.env, ...options.env, [TRAINER_ENV]: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  return {
    pid: child.pid,
    send: (command) => {
      if (child.connected) child.send(command)
    },
    onMessage: (listener) => {
      const handler = (message: unknown) => {
        if (isTrainerMessage(message)) listener(message)
      }
      child.on('message', handler)
      return () => child.off('message', handler)
    },
    onExit: (listener) => {
      child.on('exit', listener)
      return () => child.off('exit', listener)
    },
    exited,
    kill: (signal) => {
      child.kill(signal)
    }
  }
}

if (process.env[TRAINER_ENV] === '1' || parentPort() !== undefined) runTrainerProcess()
