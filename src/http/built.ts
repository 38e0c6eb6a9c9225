import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/**
 * A lookup in a module `npm run build` compiled ahead of time and wrote beside the bundle
 * (src/http/precompiled.ts): a Map from a schema's key to its compiled function. The module is
 * read at the first lookup, so a process that compiles no schema (a worker, most CLI commands)
 * never loads it. Run from the sources (tests, tsx) there is none, and every lookup misses: each
 * schema compiles at first use, as it would without a build.
 */
export function builtBeside<F>(url: URL): (key: string) => F | undefined {
  let built: Map<string, F> | undefined
  return (key) => {
    if (!built) {
      const file = fileURLToPath(url)
      built = existsSync(file) ? (createRequire(url)(file) as Map<string, F>) : new Map()
    }
    return built.get(key)
  }
}
