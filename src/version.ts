import { readFileSync } from 'node:fs'

/** The package's version, from the package.json one level above this file (src/ under tsx, dist/ when built). */
function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    if (pkg.name === 'ventas') return pkg.version
  } catch {
    // not where it should be (a copied file); the version is unknown
  }
  return '0.0.0'
}

export const VERSION = readVersion()
