/** Formatting shared by the Train and Runs views. */

/** SQLite's "YYYY-MM-DD HH:MM:SS" (UTC) or ISO: a Date. */
export function parseTime(value: string | null): Date | null {
  if (!value) return null
  const date = new Date(value.includes('T') ? value : `${value.replace(' ', 'T')}Z`)
  return Number.isNaN(date.getTime()) ? null : date
}

/** "12 s", "3 min 5 s", "1 h 4 min". */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return '–'
  const s = Math.round(seconds)
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${s % 60} s`
  return `${Math.floor(m / 60)} h ${m % 60} min`
}

/** Seconds from `start` to `end` (or to `now` while running). */
export function secondsBetween(start: string | null, end: string | null, now: number): number | null {
  const a = parseTime(start)
  if (!a) return null
  const b = parseTime(end)
  return ((b ? b.getTime() : now) - a.getTime()) / 1000
}

/** "Mar 3, 14:05". */
export function formatStarted(value: string | null): string {
  const date = parseTime(value)
  if (!date) return '–'
  return date.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
}

export function formatPercent(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '–' : `${(value * 100).toFixed(1)}%`
}

export function formatLoss(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(value < 0.01 ? 4 : 3)
}

/** 0.001 -> "1.0e-3", 0.05 -> "0.050". */
export function formatLearningRate(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–'
  return value !== 0 && value < 0.01 ? value.toExponential(2) : value.toFixed(3)
}
