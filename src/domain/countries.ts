/**
 * Defaults a new account or group takes from its country when none are given: the time zone of
 * the country's largest commercial centre and its currency. Countries not listed fall back to
 * UTC and USD; both are always overridable.
 */
const COUNTRY_DEFAULTS: Record<string, { timezone: string; currency: string }> = {
  AR: { timezone: 'America/Argentina/Buenos_Aires', currency: 'ARS' },
  BO: { timezone: 'America/La_Paz', currency: 'BOB' },
  BR: { timezone: 'America/Sao_Paulo', currency: 'BRL' },
  CL: { timezone: 'America/Santiago', currency: 'CLP' },
  CO: { timezone: 'America/Bogota', currency: 'COP' },
  CR: { timezone: 'America/Costa_Rica', currency: 'CRC' },
  EC: { timezone: 'America/Guayaquil', currency: 'USD' },
  ES: { timezone: 'Europe/Madrid', currency: 'EUR' },
  GT: { timezone: 'America/Guatemala', currency: 'GTQ' },
  MX: { timezone: 'America/Mexico_City', currency: 'MXN' },
  PA: { timezone: 'America/Panama', currency: 'PAB' },
  PE: { timezone: 'America/Lima', currency: 'PEN' },
  PT: { timezone: 'Europe/Lisbon', currency: 'EUR' },
  PY: { timezone: 'America/Asuncion', currency: 'PYG' },
  UY: { timezone: 'America/Montevideo', currency: 'UYU' },
  US: { timezone: 'America/New_York', currency: 'USD' },
}

export function countryDefaults(countryCode: string): { timezone: string; currency: string } {
  return COUNTRY_DEFAULTS[countryCode] ?? { timezone: 'UTC', currency: 'USD' }
}
