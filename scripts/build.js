/**
 * `npm run build`: bundles the `ventas` command and the checker thread into dist/main.js and
 * dist/checker-thread.js. Node 20 loads ES modules one file at a time, and three packages ship
 * as many small ones (typebox 373, kysely 263, libphonenumber-js 93, beside our own 114): as
 * separate files they were nearly a third of `ventas serve`'s start (BENCHMARKS.md §8). Those and
 * our code are inlined. Every other package is CommonJS (pg behind a thin ES wrapper), loads
 * quickly through `require`, and stays in node_modules as Node resolves it: better-sqlite3's
 * native addon, swagger-ui's assets and the packages that find files beside their own need that.
 * Types are checked by `npm run typecheck`.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'

const INLINED = new Set(['typebox', 'kysely', 'libphonenumber-js'])
const packageOf = (specifier) => specifier.split('/', specifier.startsWith('@') ? 2 : 1).join('/')

const root = fileURLToPath(new URL('..', import.meta.url))
rmSync(`${root}/dist`, { recursive: true, force: true })
await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts', 'src/services/checker-thread.ts', 'src/http/precompiled.ts'],
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
      name: 'external-packages-but-the-inlined',
      setup(build) {
        // Bare specifiers (packages, node: builtins): inline the listed packages, leave the rest.
        build.onResolve({ filter: /^[^./]/ }, ({ path }) =>
          INLINED.has(packageOf(path)) ? undefined : { path, external: true },
        )
      },
    },
  ],
})

// The route schemas' validators and serializers, compiled now rather than at every start
// (src/http/precompiled.ts); the bundle that wrote them is not shipped.
try {
  const { precompiled } = await import(pathToFileURL(`${root}/dist/precompiled.js`).href)
  const { validators, serializers } = await precompiled()
  writeFileSync(`${root}/dist/validators.cjs`, validators)
  writeFileSync(`${root}/dist/serializers.cjs`, serializers)
} finally {
  rmSync(`${root}/dist/precompiled.js`, { force: true })
  rmSync(`${root}/dist/precompiled.js.map`, { force: true })
}
