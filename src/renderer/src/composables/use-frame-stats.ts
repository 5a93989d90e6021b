import { onBeforeUnmount, ref, watch, type Ref } from 'vue'

/** Frame-time statistics of the page while something (training) is under way, in milliseconds. */
export interface FrameStats {
  /** Frames measured (deltas between consecutive requestAnimationFrame callbacks). */
  frames: number
  max: number
  p95: number
  mean: number
  /** Seconds measured. */
  seconds: number
}

declare global {
  interface Window {
    /** Read by the end-to-end tests: is the UI still responsive while a run trains? */
    __studioFrameStats?: FrameStats
  }
}

const MAX_SAMPLES = 50_000

function summarize(deltas: readonly number[]): FrameStats {
  if (deltas.length === 0) return { frames: 0, max: 0, p95: 0, mean: 0, seconds: 0 }
  const sorted = [...deltas].sort((a, b) => a - b)
  const total = deltas.reduce((a, b) => a + b, 0)
  return {
    frames: deltas.length,
    max: Math.round(sorted[sorted.length - 1] * 10) / 10,
    p95: Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] * 10) / 10,
    mean: Math.round((total / deltas.length) * 10) / 10,
    seconds: Math.round(total / 100) / 10
  }
}

/**
 * Measures frame times (requestAnimationFrame deltas) while `active` is true, and publishes the
 * max and 95th percentile on `window.__studioFrameStats`. A new measurement starts each time
 * `active` turns on. Frames while the page is hidden are not counted (the browser stops them).
 */
export function useFrameStats(active: Ref<boolean>): Ref<FrameStats> {
  const stats = ref<FrameStats>(summarize([]))
  let deltas: number[] = []
  let handle = 0
  let last = 0

  function publish(): void {
    stats.value = summarize(deltas)
    window.__studioFrameStats = stats.value
  }

  function frame(now: number): void {
    if (last > 0 && document.visibilityState === 'visible' && deltas.length < MAX_SAMPLES) deltas.push(now - last)
    last = now
    if (deltas.length % 30 === 0) publish()
    handle = requestAnimationFrame(frame)
  }

  function stop(): void {
    if (handle) cancelAnimationFrame(handle)
    handle = 0
    last = 0
    publish()
  }

  // A hidden page gets no frames: the gap until it shows again is not a slow frame.
  const onVisibility = () => {
    last = 0
  }
  document.addEventListener('visibilitychange', onVisibility)

  watch(
    active,
    (on) => {
      if (on && !handle) {
        deltas = []
        last = 0
        publish()
        handle = requestAnimationFrame(frame)
      } else if (!on && handle) stop()
    },
    { immediate: true }
  )
  onBeforeUnmount(() => {
    document.removeEventListener('visibilitychange', onVisibility)
    stop()
  })
  return stats
}
