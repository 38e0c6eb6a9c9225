import { readFileSync } from 'node:fs'

/** The package's version, from the package.json above this file (src/ when run with tsx, dist/src/ when built). */
function readVersion(): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8'))
      if (pkg.name === 'ventas') return pkg.version
    } catch {
      // not at this level; try the next
    }
  }
  return '0.0.0'
}

export const VERSION = readVersion()
