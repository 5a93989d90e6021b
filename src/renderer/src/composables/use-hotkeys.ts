import { isFocusedElementEditable, useEventListener } from '@vueuse/core'
import { toValue, type MaybeRefOrGetter } from 'vue'

/** True when a key press belongs to a text field, a select, or an open menu, not to the view. */
export function isTypingTarget(event: KeyboardEvent): boolean {
  if (isFocusedElementEditable()) return true
  const target = event.target
  if (!(target instanceof HTMLElement)) return false
  if (target.isContentEditable) return true
  // Naive UI's selects and dropdowns take arrow keys and type-ahead for themselves.
  return Boolean(target.closest('.n-base-selection, .n-base-select-menu, .n-dropdown-menu, [role="combobox"], [role="listbox"], [role="menu"]'))
}

/**
 * Window-wide view shortcuts that stay quiet while the person types in a field, while a
 * modal is open, or while `enabled` is false.
 */
export function useHotkeys(handler: (event: KeyboardEvent) => void, enabled: MaybeRefOrGetter<boolean> = true): void {
  useEventListener(window, 'keydown', (event: KeyboardEvent) => {
    if (event.defaultPrevented || !toValue(enabled) || isTypingTarget(event)) return
    if (document.querySelector('.n-modal-container .n-modal, .n-popconfirm')) return
    handler(event)
  })
}
