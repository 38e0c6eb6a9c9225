/**
 * How a subscription's lane in a sender is sized (webhooks.md §4: concurrency bounded per
 * subscription): requests open at once, rounds of them held, and the lease that covers the wait.
 */

/**
 * Rounds of its share a lane may hold (open plus waiting). A claim costs a transaction and two
 * reads whatever it takes, so taking three rounds at a time instead of one costs a fast receiver's
 * lane a third as many claims (bench/deliveries.ts, at a share of 8: +13 % deliveries a second).
 * A delivery then waits behind at most three rounds of its subscription's requests: `leaseFor`
 * covers them.
 */
export const LANE_ROUNDS = 4

/**
 * How long a claim must hold a delivery so that only a dead sender loses it: the rounds it may
 * wait in its lane and its own request, each up to the request timeout, plus `marginMs`.
 */
export function leaseFor(timeoutMs: number, marginMs: number): number {
  return LANE_ROUNDS * timeoutMs + marginMs
}

/** Requests open to one subscription at most, unless configured (`VENTAS_WEBHOOK_CONCURRENCY`). */
export const PER_SUBSCRIPTION = 64
