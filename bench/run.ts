/**
 * `npm run bench` runs every benchmark; `npm run bench -- <name> [flags]` runs one. Each runs in
 * its own process, so one's heap, connections and warm caches never colour another's figures.
 * Flags after the name go to that benchmark (e.g. `--leads 3000`).
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const BENCHES: Record<string, string> = {
  accept: 'bench/accept.ts',
  batch: 'bench/batch.ts',
  'intake-costs': 'bench/intake-costs.ts',
  v1: 'bench/v1.ts',
  processing: 'bench/processing.ts',
  scale: 'bench/scale.ts',
  deliveries: 'bench/deliveries.ts',
  claims: 'bench/claims.ts',
  latency: 'bench/latency.ts',
  lookups: 'bench/lookups.ts',
  startup: 'bench/startup.ts',
}

const [name, ...flags] = process.argv.slice(2)
const chosen = name && !name.startsWith('--') ? [name] : Object.keys(BENCHES)
const passed = name && !name.startsWith('--') ? flags : process.argv.slice(2)
const root = fileURLToPath(new URL('../', import.meta.url))
for (const bench of chosen) {
  const file = BENCHES[bench]
  if (!file) {
    console.error(`unknown benchmark "${bench}"; one of: ${Object.keys(BENCHES).join(', ')}`)
    process.exit(2)
  }
  const run = spawnSync(process.execPath, ['--import', 'tsx', file, ...passed], {
    cwd: root,
    stdio: 'inherit',
  })
  if (run.status !== 0) process.exit(run.status ?? 1)
}
