/**
 * The sizes at which the studio serves an image to the page, by image id: `thumbnail` for the
 * grids (256 px, made at import), `preview` for the Label view's large image (made on first
 * request). Web mode asks `/thumbnails/<id>?size=preview`, the desktop app
 * `studio-thumb://image/<id>?size=preview`; both check the parameter with this schema.
 */
import { z } from 'zod'

export const renditionSchema = z.enum(['thumbnail', 'preview'])
export type Rendition = z.infer<typeof renditionSchema>

/** The rendition a `size` query parameter asks for (absent: the thumbnail), or why it is refused. */
export function parseRendition(size: string | null): { ok: true; rendition: Rendition } | { ok: false; message: string } {
  if (size === null) return { ok: true, rendition: 'thumbnail' }
  const parsed = renditionSchema.safeParse(size)
  return parsed.success ? { ok: true, rendition: parsed.data } : { ok: false, message: `size: expected ${renditionSchema.options.join(' or ')}, got ${JSON.stringify(size.slice(0, 40))}` }
}
