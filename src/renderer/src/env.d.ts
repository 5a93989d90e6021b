/// <reference types="vite/client" />

interface Window {
  /** Present in the desktop app (the preload); absent in web mode. */
  studio?: import('../../shared/bridge').StudioBridge
}

declare module '*.vue' {
  import type { DefineComponent } from 'vue'
  const component: DefineComponent<object, object, unknown>
  export default component
}
