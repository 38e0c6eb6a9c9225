/**
 * Office hours are per weekday in the group's own time zone: `{ monday: [{from: "09:00", to:
 * "18:00"}], ... }`. A weekday that is absent or empty is closed. `null` means always open (the
 * default for a new group, so a fresh install routes leads at any hour). A range whose `to` is
 * earlier than its `from` runs past midnight into the next day ("22:00"–"06:00").
 */
export const WEEKDAYS = [
  'sunday',
  'monday',
  'tuesday',
  'wednesday',
  'thursday',
  'friday',
  'saturday',
] as const
export type Weekday = (typeof WEEKDAYS)[number]
export type TimeRange = { from: string; to: string }
export type OfficeHours = Partial<Record<Weekday, TimeRange[]>>

const formatters = new Map<string, Intl.DateTimeFormat>()

/** Weekday index (0 = Sunday) and minutes since midnight of `at` in `timezone`. */
export function localTime(at: Date, timezone: string): { day: number; minutes: number } {
  let format = formatters.get(timezone)
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
    formatters.set(timezone, format)
  }
  const parts = Object.fromEntries(format.formatToParts(at).map((p) => [p.type, p.value]))
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(parts.weekday ?? '')
  return { day, minutes: Number(parts.hour) * 60 + Number(parts.minute) }
}

function toMinutes(hhmm: string): number {
  const [h, m] = hhmm.split(':')
  return Number(h) * 60 + Number(m)
}

export function isWithinOfficeHours(hours: OfficeHours | null, timezone: string, at: Date): boolean {
  if (hours === null) return true
  const { day, minutes } = localTime(at, timezone)
  const today = hours[WEEKDAYS[day] as Weekday] ?? []
  const yesterday = hours[WEEKDAYS[(day + 6) % 7] as Weekday] ?? []
  const inToday = today.some(({ from, to }) => {
    const [start, end] = [toMinutes(from), toMinutes(to)]
    return end > start ? minutes >= start && minutes < end : minutes >= start
  })
  // An overnight range of yesterday ("22:00"–"06:00") still covers the early hours of today.
  const inYesterdaysNight = yesterday.some(({ from, to }) => {
    const [start, end] = [toMinutes(from), toMinutes(to)]
    return end <= start && minutes < end
  })
  return inToday || inYesterdaysNight
}

/** True when `timezone` is an IANA zone this runtime knows. */
export function isTimeZone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone })
    return true
  } catch {
    return false
  }
}
