import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/**
 * A module `npm run build` compiled ahead of time and wrote beside the bundle (src/http/precompiled.ts):
 * a Map from a schema's key to its compiled function. Run from the sources (tests, tsx) there is
 * none, and an empty Map says every schema compiles at first use, as it would without a build.
 */
export function builtBeside<F>(url: URL): Map<string, F> {
  const file = fileURLToPath(url)
  return existsSync(file) ? createRequire(url)(file) : new Map()
}
