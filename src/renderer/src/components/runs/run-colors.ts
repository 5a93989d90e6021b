/** One colour per compared run, readable on light and dark backgrounds. */
export const RUN_COLORS = ['#2080f0', '#f0a020', '#18a058', '#d03050', '#8a5cf5', '#13a8a8', '#e8673c', '#8c9aa6'] as const

export function runColor(index: number): string {
  return RUN_COLORS[index % RUN_COLORS.length]
}
