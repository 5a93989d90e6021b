import { Command, InvalidArgumentError, Option } from 'commander'
import { resolveDataDir } from '../core/store/data-dir'
import { appVersion } from '../core/project-root'
import { serve } from './serve'
import { datasetCommand } from './dataset-commands'
import { modelCommands } from './model-commands'
import { trainCommands } from './train-commands'

function port(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a whole number from 0 to 65535')
  return n
}

function dataDirOption(): Option {
  return new Option('--data-dir <dir>', 'where the studio keeps its database and files (default: per-user data folder, or $FINETUNE_STUDIO_DATA_DIR)')
}

export function buildProgram(): Command {
  const program = new Command()
    .name('finetune-studio')
    .description('Fine-tune a pretrained, weight-normalized VGG16 on your own images, entirely on your machine.')
    .version(appVersion())
    .showHelpAfterError()

  program
    .command('serve')
    .description('serve the studio to a browser (web mode): the UI over HTTP, its API over a WebSocket')
    .addOption(dataDirOption())
    .option('--port <port>', 'port to listen on (0 picks a free one)', port, 0)
    .option('--host <host>', 'address to bind; anything but loopback exposes the studio to your network', '127.0.0.1')
    .option('--no-open', 'do not open a browser')
    .action(async (opts: { dataDir?: string; port: number; host: string; open: boolean }) => {
      await serve({ dataDir: resolveDataDir({ flag: opts.dataDir }), port: opts.port, host: opts.host, open: opts.open })
    })

  program.addCommand(datasetCommand(dataDirOption))
  for (const command of modelCommands(dataDirOption)) program.addCommand(command)
  for (const command of trainCommands(dataDirOption)) program.addCommand(command)

  return program
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv)
  } catch (error) {
    console.error(`finetune-studio: ${error instanceof Error ? error.message : String(error)}`)
    process.exitCode = 1
  }
}
