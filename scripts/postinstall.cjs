// Electron's own install script downloads its binary; it is denied in allowScripts so that an
// offline or locked-down install still succeeds. Here we try it once and tolerate failure:
// without the binary the studio runs in web mode.
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const fs = require('node:fs')

function electronInstallScript() {
  try {
    return require.resolve('electron/install.js')
  } catch {
    return null
  }
}

function electronBinaryPresent() {
  try {
    const pathFile = path.join(path.dirname(require.resolve('electron/package.json')), 'path.txt')
    return fs.existsSync(pathFile)
  } catch {
    return false
  }
}

const script = electronInstallScript()
if (!script) {
  // electron is a devDependency: a production install has none, and needs none.
  process.exit(0)
}
if (electronBinaryPresent()) process.exit(0)
if (process.env.ELECTRON_SKIP_BINARY_DOWNLOAD) {
  console.log('finetune-studio: Electron binary download skipped (ELECTRON_SKIP_BINARY_DOWNLOAD); the studio will run in web mode.')
  process.exit(0)
}
const result = spawnSync(process.execPath, [script], { stdio: 'pipe', timeout: 180_000 })
if (result.status === 0 && electronBinaryPresent()) {
  console.log('finetune-studio: Electron binary installed; `npm start` opens the desktop app.')
} else {
  console.log('finetune-studio: Electron binary could not be downloaded; the desktop shell is unavailable and `npm start` runs web mode instead.')
}
process.exit(0)
