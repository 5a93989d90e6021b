// `npm start`: build, then open the desktop app, or web mode where Electron cannot run.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const args = process.argv.slice(2)

function electronBinary() {
  let binary
  try {
    binary = require('electron') // the path of the binary, or a throw when it was never downloaded
  } catch {
    return { ok: false, why: 'the Electron binary is not installed (its download failed or was skipped)' }
  }
  if (typeof binary !== 'string' || !fs.existsSync(binary)) return { ok: false, why: 'the Electron binary is missing' }
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    return { ok: false, why: 'there is no display to open a window on' }
  }
  return { ok: true, binary }
}

const electronVite = path.join(path.dirname(require.resolve('electron-vite/package.json')), 'bin', 'electron-vite.js')
const build = spawnSync(process.execPath, [electronVite, 'build', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' })
if (build.status !== 0) process.exit(build.status ?? 1)

const electron = electronBinary()
const child = electron.ok
  ? spawn(electron.binary, [root, ...args], { cwd: root, stdio: 'inherit' })
  : (console.log(`finetune-studio: desktop shell unavailable (${electron.why}); starting web mode instead.`),
    spawn(process.execPath, [path.join(root, 'bin', 'finetune-studio.cjs'), 'serve', ...args], { cwd: root, stdio: 'inherit' }))
child.on('exit', (code) => process.exit(code ?? 0))
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
