#!/usr/bin/env node
import { type ParseArgsConfig, parseArgs } from 'node:util'
import { ConfigError } from '../config.js'
import { accountsCreate, accountsUpdate, groupsCreate, usersCreate } from './commands/directory.js'
import { importLeads } from './commands/import.js'
import { keysCreate, keysList, keysRevoke, keysRotate } from './commands/keys.js'
import { api, doctor, migrate, serve, worker } from './commands/operations.js'
import { type CliContext, CliError, openContext } from './context.js'

export type Output = { text: string; json: unknown; exitCode?: number }

export type Command = {
  usage: string
  options: NonNullable<ParseArgsConfig['options']>
  /** False for commands that manage their own database connection (serve, doctor). */
  needsContext?: false
  run(ctx: CliContext, values: Record<string, unknown>, positionals: string[]): Promise<Output | null>
}

/** The `ventas` commands of operations.md §6, by their words. */
const COMMANDS: Record<string, Command> = {
  serve,
  api,
  worker,
  migrate,
  doctor,
  'accounts create': accountsCreate,
  'accounts update': accountsUpdate,
  'groups create': groupsCreate,
  'users create': usersCreate,
  'keys create': keysCreate,
  'keys list': keysList,
  'keys revoke': keysRevoke,
  'keys rotate': keysRotate,
  import: importLeads,
}

function help(): string {
  const lines = Object.entries(COMMANDS).map(([, command]) => `  ventas ${command.usage}`)
  return ['Usage:', ...lines, '', 'Every command takes --json for machine-readable output.'].join('\n')
}

function findCommand(args: string[]): { name: string; command: Command; rest: string[] } | undefined {
  const two = `${args[0]} ${args[1]}`
  if (COMMANDS[two]) return { name: two, command: COMMANDS[two], rest: args.slice(2) }
  const one = args[0] ?? 'serve'
  if (COMMANDS[one]) return { name: one, command: COMMANDS[one], rest: args.slice(1) }
  return undefined
}

export async function main(args: string[]): Promise<number> {
  const json = args.includes('--json')
  const fail = (code: string, message: string) => {
    if (json) process.stdout.write(`${JSON.stringify({ error: { code, message } })}\n`)
    else process.stderr.write(`ventas: ${message}\n`)
    return 1
  }
  if (args[0] === 'help' || args.includes('--help')) {
    process.stdout.write(`${help()}\n`)
    return 0
  }
  const found = findCommand(args)
  if (!found)
    return fail(
      'UNKNOWN_COMMAND',
      `unknown command "${args
        .filter((a) => !a.startsWith('--'))
        .slice(0, 2)
        .join(' ')}"\n${help()}`,
    )
  let ctx: CliContext | undefined
  try {
    const { values, positionals } = parseArgs({
      args: found.rest,
      options: { ...found.command.options, json: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    })
    if (found.command.needsContext !== false) ctx = await openContext()
    const output = await found.command.run(ctx as CliContext, values, positionals)
    if (output === null) return -1 // a long-running command (serve): keep the process alive
    process.stdout.write(`${json ? JSON.stringify(output.json) : output.text}\n`)
    return output.exitCode ?? 0
  } catch (error) {
    if (error instanceof CliError) return fail(error.code, error.message)
    if (error instanceof ConfigError) return fail('INVALID_CONFIGURATION', error.message)
    if ((error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      return fail('INVALID', `${(error as Error).message}\nusage: ventas ${found.command.usage}`)
    }
    return fail('UNEXPECTED_ERROR', (error as Error).stack ?? String(error))
  } finally {
    await ctx?.db.destroy()
  }
}

main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exitCode = code
})
