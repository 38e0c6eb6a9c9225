/** Expected failures are values, not exceptions: services return a Result and handlers map it. */
export type Failure = { ok: false; code: 'NOT_FOUND' | 'CONFLICT' | 'INVALID'; message: string }
export type Result<T> = { ok: true; value: T } | Failure

export const ok = <T>(value: T): Result<T> => ({ ok: true, value })
export const fail = (code: Failure['code'], message: string): Failure => ({ ok: false, code, message })
