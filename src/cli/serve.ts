import { Studio } from '../core/services/studio'
import { builtRendererDir } from '../core/project-root'
import { startWebHost } from '../host/web-host'
import { openInBrowser } from './open-browser'

export interface ServeOptions {
  dataDir: string
  port: number
  host: string
  open: boolean
}

export async function serve(options: ServeOptions): Promise<void> {
  const studio = await Studio.open({ dataDir: options.dataDir, transport: 'web' })
  const host = await startWebHost({ studio, rendererDir: builtRendererDir(), host: options.host, port: options.port })
  console.log(`Finetune Studio (web mode) is at ${host.openUrl}`)
  if (options.open) openInBrowser(host.openUrl)
  const stop = async () => {
    await host.close()
    await studio.close()
    process.exit(0)
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
