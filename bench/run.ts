/**
 * `npm run bench [-- --only NAME] [-- --json]`: runs the benchmark cases, prints a table (or one
 * JSON object per case with --json) and writes all results to bench-results/latest.json.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { BenchCase, BenchResult } from './bench-case'
import { importCase, metricsCase, pageCase } from './cases/data-cases'
import { ENGINE_CASES } from './cases/engine-cases'

const CASES: BenchCase[] = [importCase, pageCase, metricsCase, ...ENGINE_CASES]

function parseArgs(argv: string[]): { only: string[]; json: boolean; out: string } {
  const only: string[] = []
  let json = false
  let out = path.resolve(__dirname, '../bench-results/latest.json')
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--only') only.push(...(argv[++i] ?? '').split(','))
    else if (argv[i] === '--json') json = true
    else if (argv[i] === '--out') out = path.resolve(argv[++i])
    else throw new Error(`unknown argument ${argv[i]}; use --only NAME[,NAME], --json, --out FILE`)
  }
  return { only, json, out }
}

function formatMeasures(result: BenchResult): string {
  return Object.entries(result)
    .filter(([key]) => !['case', 'backend', 'imagesPerSec', 'target', 'targetMet'].includes(key))
    .map(([key, value]) => `${key}=${typeof value === 'number' ? value.toLocaleString('en') : value}`)
    .join('  ')
}

async function main(): Promise<void> {
  const { only, json, out } = parseArgs(process.argv.slice(2))
  const unknown = only.filter((name) => !CASES.some((c) => c.name === name))
  if (unknown.length) throw new Error(`unknown case(s) ${unknown.join(', ')}; cases: ${CASES.map((c) => c.name).join(', ')}`)
  const selected = only.length ? CASES.filter((c) => only.includes(c.name)) : CASES
  const rows: (BenchResult & { target?: string; targetMet?: boolean })[] = []
  for (const benchCase of selected) {
    if (!json) process.stderr.write(`running ${benchCase.name}: ${benchCase.description}...\n`)
    const result = await benchCase.run()
    const row = { ...result, target: benchCase.target?.text, targetMet: benchCase.target?.met(result) }
    rows.push(row)
    if (json) console.log(JSON.stringify(row))
  }
  if (!json) {
    const targets = rows.map((r) => (r.target ? `${r.targetMet ? 'met' : 'MISSED'}: ${r.target}` : ''))
    const width = Math.max(44, ...targets.map((t) => t.length + 2))
    console.log(`\n${'case'.padEnd(24)}${'backend'.padEnd(10)}${'images/s'.padStart(10)}  ${'target'.padEnd(width)}measures`)
    rows.forEach((r, i) => {
      console.log(`${r.case.padEnd(24)}${r.backend.padEnd(10)}${(r.imagesPerSec?.toLocaleString('en') ?? '').padStart(10)}  ${targets[i].padEnd(width)}${formatMeasures(r)}`)
    })
  }
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30) }, results: rows }, null, 2))
  if (!json) console.log(`\nwrote ${path.relative(process.cwd(), out)}`)
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
