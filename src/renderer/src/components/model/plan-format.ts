/** Formatting of the layer picker's numbers: parameters, FLOPs, bytes, shapes. */

const exact = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

function scaled(n: number, units: readonly [number, string][]): string {
  for (const [size, unit] of units) {
    if (Math.abs(n) >= size) {
      const v = n / size
      return `${v.toFixed(1)} ${unit}`
    }
  }
  return `${Math.round(n)}`
}

/** 14,714,688 -> "14.7 M", 36,928 -> "36.9 K", 12 -> "12". */
export function formatParams(n: number): string {
  return scaled(n, [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'K']
  ]).trim()
}

/** Every digit: "14,714,688". */
export function formatExact(n: number): string {
  return exact.format(n)
}

/** 30.9e9 -> "30.9 GFLOPs", 1.2e6 -> "1.2 MFLOPs". */
export function formatFlops(n: number): string {
  if (n === 0) return '0 FLOPs'
  const s = scaled(n, [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'K']
  ])
  return /[TGMK]$/.test(s) ? `${s}FLOPs` : `${s} FLOPs`
}

/** Binary units, as memory is: "412 MB", "1.6 GB", "96 KB". */
export function formatMemory(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KB', 'MB', 'GB', 'TB']
  let v = bytes / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`
}

/** [224, 224, 64] -> "224×224×64", [4096] -> "4096". */
export function formatShape(shape: readonly number[]): string {
  return shape.join('×')
}
