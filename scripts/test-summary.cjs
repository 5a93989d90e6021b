// One closing line for the whole `npm test`: unit (vitest) and end-to-end (Playwright) counts.
const fs = require('node:fs')
const path = require('node:path')

const reports = path.resolve(__dirname, '..', 'reports')
const vitest = JSON.parse(fs.readFileSync(path.join(reports, 'vitest.json'), 'utf8'))
const playwright = JSON.parse(fs.readFileSync(path.join(reports, 'playwright.json'), 'utf8'))

const passed = vitest.numPassedTests + playwright.stats.expected + playwright.stats.flaky
const failed = vitest.numFailedTests + playwright.stats.unexpected
const skipped = vitest.numPendingTests + vitest.numTodoTests + playwright.stats.skipped
console.log(`unit: ${vitest.numPassedTests} passed, ${vitest.numFailedTests} failed; end-to-end: ${playwright.stats.expected} passed, ${playwright.stats.unexpected} failed`)
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed > 0 ? 1 : 0)
