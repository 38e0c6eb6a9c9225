import { BlockList, isIP } from 'node:net'

/**
 * Addresses a webhook may never reach unless VENTAS_WEBHOOK_ALLOW_PRIVATE=true (webhooks.md §2):
 * loopback, private, carrier-grade NAT, link-local (which holds the cloud metadata address
 * 169.254.169.254), unique-local (which holds fd00:ec2::254), unspecified, multicast and reserved
 * ranges, and every IPv4-mapped IPv6 address (no real receiver is reached that way, and it is the
 * classic way around an IPv4-only list). The check is on addresses, after DNS: callers must check
 * every address a name resolves to and connect to the address they checked.
 */
// One list per family: a BlockList also checks IPv4 addresses against its IPv6 rules (as mapped
// addresses), so a single list with ::ffff:0:0/96 would refuse all of IPv4.
const forbiddenV4 = new BlockList()
const forbiddenV6 = new BlockList()
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  forbiddenV4.addSubnet(network, prefix, 'ipv4')
}
for (const [network, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b::', 96], // NAT64 (reaches IPv4 space)
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique-local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  forbiddenV6.addSubnet(network, prefix, 'ipv6')
}

/** Why `address` may not be reached, or null when it may. Anything that is not an IP address is refused. */
export function forbiddenAddress(address: string): string | null {
  const bare = address.replace(/^\[|\]$/g, '')
  const family = isIP(bare)
  if (family === 0) return `${address} is not an IP address`
  const refused = family === 4 ? forbiddenV4.check(bare, 'ipv4') : isForbiddenV6(bare)
  return refused ? `${bare} is a private, loopback, link-local or reserved address` : null
}

/** IPv6 in its canonical spelling (the URL parser's), so `0:0:0:0:0:ffff:127.0.0.1` is `::ffff:7f00:1`. */
function isForbiddenV6(address: string): boolean {
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1)
  return canonical.startsWith('::ffff:') || forbiddenV6.check(canonical, 'ipv6')
}
