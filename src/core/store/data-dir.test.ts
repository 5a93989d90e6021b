import { describe, it, expect } from 'vitest'
import path from 'node:path'
import { resolveDataDir, DATA_DIR_ENV } from './data-dir'

describe('the data directory', () => {
  it('prefers --data-dir, then the environment, then the platform default', () => {
    const env = { [DATA_DIR_ENV]: '/from/env' }
    expect(resolveDataDir({ flag: '/from/flag', env })).toBe(path.resolve('/from/flag'))
    expect(resolveDataDir({ env })).toBe(path.resolve('/from/env'))
    expect(resolveDataDir({ env: {}, platform: 'linux', home: '/home/ada' })).toBe('/home/ada/.local/share/finetune-studio')
  })

  it('follows each platform convention', () => {
    expect(resolveDataDir({ env: { XDG_DATA_HOME: '/xdg' }, platform: 'linux', home: '/h' })).toBe('/xdg/finetune-studio')
    expect(resolveDataDir({ env: {}, platform: 'darwin', home: '/Users/ada' })).toBe('/Users/ada/Library/Application Support/Finetune Studio')
    expect(resolveDataDir({ env: { APPDATA: 'C:\\Users\\ada\\AppData\\Roaming' }, platform: 'win32', home: 'C:\\Users\\ada' })).toBe(
      'C:\\Users\\ada\\AppData\\Roaming\\Finetune Studio'
    )
  })
})
