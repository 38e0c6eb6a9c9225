/** Expected failures are values, not exceptions: services return a Result and handlers map it. */
/** `path` names the input field at fault (a JSON pointer such as `/phone`), when one is. */
export type Failure = {
  ok: false
  code: 'NOT_FOUND' | 'CONFLICT' | 'INVALID'
  message: string
  path?: string
}
export type Result<T> = { ok: true; value: T } | Failure

export const ok = <T>(value: T): Result<T> => ({ ok: true, value })
export const fail = (code: Failure['code'], message: string, path?: string): Failure => ({
  ok: false,
  code,
  message,
  ...(path ? { path } : {}),
})
