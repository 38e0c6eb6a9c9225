/**
 * `npm run build`: bundles the `ventas` command and the checker thread into dist/main.js and
 * dist/checker-thread.js. Node 20 loads ES modules one file at a time, and three packages ship
 * hundreds of them (typebox 373, kysely 263, libphonenumber-js 93, beside our own 114): as
 * separate files they were a third of `ventas serve`'s start (BENCHMARKS.md §9). Those and our
 * code are inlined; every other package is CommonJS, loads quickly through `require`, and stays
 * in node_modules as Node resolves it (better-sqlite3's native addon, swagger-ui's assets and
 * packages that find files beside their own must). Types are checked by `npm run typecheck`.
 */
import { rmSync } from 'node:fs'
import { build } from 'esbuild'

const INLINED = new Set(['typebox', 'kysely', 'libphonenumber-js'])
const packageOf = (specifier) => specifier.split('/', specifier.startsWith('@') ? 2 : 1).join('/')

rmSync('dist', { recursive: true, force: true })
await build({
  entryPoints: ['src/cli/main.ts', 'src/services/checker-thread.ts'],
  entryNames: '[name]',
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  logLevel: 'warning',
  plugins: [
    {
      name: 'external-commonjs-packages',
      setup(build) {
        // Bare specifiers (packages, node: builtins): inline the listed packages, leave the rest.
        build.onResolve({ filter: /^[^./]/ }, ({ path }) =>
          INLINED.has(packageOf(path)) ? undefined : { path, external: true },
        )
      },
    },
  ],
})
