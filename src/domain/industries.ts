/** The five industries of api.md §2: the path segment clients post to, and the stored lead `type`. */
export const INDUSTRIES = {
  retail: 'retail',
  insurance: 'insurance',
  vehicle: 'vehicle',
  'saving-plan': 'savingPlan',
  'real-estate': 'realEstate',
} as const

export type Industry = keyof typeof INDUSTRIES

export const ALL_INDUSTRIES = Object.keys(INDUSTRIES) as Industry[]

export function isIndustry(value: string): value is Industry {
  return Object.hasOwn(INDUSTRIES, value)
}
