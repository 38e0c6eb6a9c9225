import { type Static, Type } from 'typebox'
import { DateTimeSchema, ObjectIdSchema } from './common.js'

/**
 * The lead models of api.md §2.2, one per industry, built from shared atoms. Unknown fields are
 * ignored (no additionalProperties: false); aliases (`source`, `medium`, `campaign`, `leadId`)
 * are accepted here and folded into the canonical names by domain/lead.ts.
 */
/** Unknown fields are dropped, not refused: the validator removes what the model does not name. */
const UNKNOWN_FIELDS_DROPPED = { additionalProperties: false }

const text = (maxLength = 1000) => Type.String({ maxLength })
const optionalText = (maxLength = 1000) => Type.Optional(text(maxLength))

const MoneyAmountSchema = Type.Object({
  amount: Type.Number(),
  currency: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z]{3}$',
      description: 'ISO 4217, any case; default from /leads/defaults',
    }),
  ),
})

const MoneyAmountEstimateSchema = Type.Object({
  lowerEstimate: Type.Optional(Type.Number()),
  upperEstimate: Type.Number(),
  currency: Type.Optional(Type.String({ pattern: '^[A-Za-z]{3}$' })),
})

const productFields = {
  make: optionalText(),
  model: optionalText(),
  detail: optionalText(5000),
  sku: optionalText(),
  price: Type.Optional(MoneyAmountSchema),
}

const ProductSchema = Type.Object(productFields, UNKNOWN_FIELDS_DROPPED)

const VehicleProductSchema = Type.Object(
  {
    ...productFields,
    modelYear: Type.Optional(Type.Union([Type.String({ maxLength: 10 }), Type.Integer()])),
    productionYear: Type.Optional(Type.Union([Type.String({ maxLength: 10 }), Type.Integer()])),
    trimLevel: optionalText(),
    style: optionalText(),
    condition: Type.Optional(Type.Union([Type.Literal('used'), Type.Literal('new')])),
    fuelType: Type.Optional(
      Type.Enum(['gasoline', 'diesel', 'flex', 'hybrid', 'electric', 'hydrogen', 'naturalGas', 'propane']),
    ),
    vin: optionalText(),
    registrationPlate: optionalText(),
    reservation: Type.Optional(
      Type.Object({
        type: optionalText(),
        amount: Type.Number(),
        currency: Type.Optional(Type.String({ pattern: '^[A-Za-z]{3}$' })),
      }),
    ),
    odometer: Type.Optional(
      Type.Object({
        amount: Type.Number(),
        unit: Type.Optional(Type.Union([Type.Literal('km'), Type.Literal('mi')])),
      }),
    ),
    tradeInVehicle: optionalText(),
    finance: Type.Optional(Type.Object({ paymentMonthLength: Type.Optional(Type.Integer({ minimum: 0 })) })),
  },
  UNKNOWN_FIELDS_DROPPED,
)

const SavingPlanProductSchema = Type.Object(
  {
    ...productFields,
    goodType: Type.Optional(Type.Enum(['vehicle', 'property', 'loan', 'other'])),
    goodSubType: optionalText(),
    brand: optionalText(),
    description: optionalText(5000),
    condition: optionalText(),
    planType: optionalText(),
    monthlyPaymentsEstimate: Type.Optional(MoneyAmountEstimateSchema),
    creditAmountEstimate: Type.Optional(MoneyAmountEstimateSchema),
  },
  UNKNOWN_FIELDS_DROPPED,
)

const RealEstateProductSchema = Type.Object(
  {
    title: optionalText(),
    type: Type.Optional(Type.Enum(['residential', 'commercial', 'industrial', 'land'])),
  },
  UNKNOWN_FIELDS_DROPPED,
)

export const NIN_TYPES = [
  'CUIT',
  'CUIL',
  'DNI',
  'CPF',
  'RUN',
  'RUT',
  'CURP',
  'RFC',
  'IMSS',
  'DNIC',
  'RUC',
  'CE',
] as const

/** NewEvent (api.md §4), as lead history and later as interactions. Discriminated by `type`. */
export const NewEventSchema = Type.Union([
  Type.Object({
    type: Type.Literal('call'),
    providerId: optionalText(),
    utmSource: optionalText(),
    startedAt: Type.Optional(DateTimeSchema),
    duration: Type.Optional(Type.Integer({ minimum: 0, description: 'milliseconds' })),
    recordingUrl: optionalText(2000),
  }),
  Type.Object({ type: Type.Literal('note'), content: text(10000) }),
  Type.Object({
    type: Type.Literal('message'),
    content: text(10000),
    sender: optionalText(),
    recipient: optionalText(),
    delivered: Type.Optional(Type.Boolean()),
    attachment: optionalText(2000),
  }),
  Type.Object({
    type: Type.Literal('question'),
    question: text(10000),
    answer: optionalText(10000),
    threadTitle: optionalText(),
    threadUrl: optionalText(2000),
  }),
])

export type NewEvent = Static<typeof NewEventSchema>

const leadFields = {
  priority: Type.Optional(Type.Number()),
  provider: optionalText(200),
  providerLeadId: optionalText(500),
  leadId: Type.Optional(Type.String({ maxLength: 500, description: 'deprecated alias of providerLeadId' })),
  utmSource: optionalText(500),
  source: Type.Optional(Type.String({ maxLength: 500, description: 'deprecated alias of utmSource' })),
  utmMedium: optionalText(500),
  medium: Type.Optional(Type.String({ maxLength: 500, description: 'alias of utmMedium' })),
  utmCampaign: optionalText(500),
  campaign: Type.Optional(Type.String({ maxLength: 500, description: 'alias of utmCampaign' })),
  firstName: optionalText(200),
  lastName: optionalText(200),
  phones: Type.Optional(
    Type.Array(text(100), { maxItems: 50, description: 'free text in any common format' }),
  ),
  emails: Type.Optional(Type.Array(text(320), { maxItems: 50 })),
  category: optionalText(200),
  nin: Type.Optional(
    Type.Array(Type.Object({ type: Type.Enum(NIN_TYPES), number: text(50) }), { maxItems: 10 }),
  ),
  address: optionalText(),
  subLocality: optionalText(),
  locality: optionalText(),
  region: optionalText(),
  country: optionalText(100),
  zipCode: optionalText(50),
  listingTitle: optionalText(),
  listingUrl: optionalText(2000),
  comments: optionalText(10000),
  company: optionalText(),
  store: optionalText(),
  agent: Type.Optional(
    Type.String({ maxLength: 500, description: "routing hint: an agent's legacyId, email or full name" }),
  ),
  history: Type.Optional(Type.Array(NewEventSchema, { maxItems: 100 })),
}

const leadOf = (name: string, product: ReturnType<typeof Type.Object>) =>
  Type.Object(
    { ...leadFields, product: Type.Optional(product) },
    {
      ...UNKNOWN_FIELDS_DROPPED,
      title: name,
      description:
        'utmSource (or source) is required, and at least one usable contact. Unknown fields are ignored.',
    },
  )

export const LEAD_SCHEMAS = {
  retail: leadOf('RetailLead', ProductSchema),
  insurance: leadOf('InsuranceLead', ProductSchema),
  vehicle: leadOf('VehicleLead', VehicleProductSchema),
  'saving-plan': leadOf('SavingPlanLead', SavingPlanProductSchema),
  'real-estate': leadOf('RealEstateLead', RealEstateProductSchema),
}

/** What every industry's lead has in common, as the handlers and domain see it. */
export type LeadInput = Static<(typeof LEAD_SCHEMAS)['retail']> & { product?: Record<string, unknown> }

export const LeadReceiptSchema = Type.Object(
  {
    id: ObjectIdSchema,
    status: Type.Enum(['queued', 'processed', 'rejected'], {
      description: 'queued; a duplicate answers with its original, which may be further along',
    }),
    receivedAt: DateTimeSchema,
    statusUrl: Type.String(),
    duplicate: Type.Optional(
      Type.Boolean({
        description:
          'ext: this lead was received before (same Idempotency-Key or provider lead); the original is returned',
      }),
    ),
  },
  { $id: 'LeadReceipt', title: 'LeadReceipt' },
)

export const LeadStatusSchema = Type.Object(
  {
    id: ObjectIdSchema,
    status: Type.Union([Type.Literal('queued'), Type.Literal('processed'), Type.Literal('rejected')]),
    receivedAt: DateTimeSchema,
    processedAt: Type.Optional(DateTimeSchema),
    prospectId: Type.Optional(ObjectIdSchema),
    merged: Type.Optional(Type.Boolean()),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  },
  { $id: 'LeadStatus', title: 'LeadStatus' },
)

export type LeadStatusView = Static<typeof LeadStatusSchema>
