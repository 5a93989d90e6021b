/** One colour per class position, readable on light and dark backgrounds alike. */
const PALETTE = ['#3b82c4', '#d9822b', '#2f9e6e', '#c2410c', '#8b5cf6', '#0e9aa7', '#c0407a', '#7c8b2e', '#b7791f', '#5b6fd6']

export function classColor(position: number): string {
  return PALETTE[((position % PALETTE.length) + PALETTE.length) % PALETTE.length]
}
