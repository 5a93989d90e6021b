import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { SystemInfo } from '../../../shared/dto'
import { studio } from '../api/client'
import type { ConnectionState } from '../api/ws-client'

export const useSystemStore = defineStore('system', () => {
  const info = ref<SystemInfo | null>(null)
  const error = ref<string | null>(null)
  const loading = ref(false)
  const connection = ref<ConnectionState>('connecting')
  const lastHeartbeat = ref<string | null>(null)

  async function load(): Promise<void> {
    loading.value = true
    try {
      info.value = await studio().call('system.info')
      error.value = null
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e)
    } finally {
      loading.value = false
    }
  }

  function watchConnection(): void {
    studio().onState((state) => {
      const reconnected = connection.value === 'closed' && state === 'open'
      connection.value = state
      if (reconnected) void load()
    })
    studio().onEvent((event) => {
      if (event.event === 'system.heartbeat') lastHeartbeat.value = event.payload.time
    })
  }

  return { info, error, loading, connection, lastHeartbeat, load, watchConnection }
})
