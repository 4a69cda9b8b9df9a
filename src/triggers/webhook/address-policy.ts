/**
 * Which addresses the requests of trigger `http` steps may never reach: loopback, private,
 * link-local and the other internal or special ranges, in every spelling an address can take.
 * The webhook client (`createWebhookClient` in client.ts) asks this for every address a host resolves to.
 */
import net from "node:net";
import ipaddr from "ipaddr.js";

type Cidr = readonly [string, number];

/** IPv4 ranges no request may reach (unless the host is allow-listed). */
export const FORBIDDEN_IPV4_RANGES: readonly Cidr[] = [
  ["0.0.0.0", 8], // "this network", includes the unspecified address
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata (169.254.169.254)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved
  ["255.255.255.255", 32], // broadcast (inside 240/4, listed for clarity)
];

/** IPv6 ranges refused outright. Ranges embedding an IPv4 address are classified by that address instead. */
export const FORBIDDEN_IPV6_RANGES: readonly Cidr[] = [
  ["::", 96], // unspecified, loopback and the deprecated IPv4-compatible addresses
  ["64:ff9b:1::", 48], // local-use NAT64 (RFC 8215)
  ["100::", 64], // discard-only
  ["2001::", 32], // Teredo (the embedded client address is obfuscated: refuse the whole range)
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
];

const IPV4_RANGES = FORBIDDEN_IPV4_RANGES.map(([address, bits]) => [ipaddr.IPv4.parse(address), bits] as [ipaddr.IPv4, number]);
const IPV6_RANGES = FORBIDDEN_IPV6_RANGES.map(([address, bits]) => [ipaddr.IPv6.parse(address), bits] as [ipaddr.IPv6, number]);
const IPV4_MAPPED = ipaddr.IPv6.parseCIDR("::ffff:0:0/96");
const IPV4_TRANSLATED = ipaddr.IPv6.parseCIDR("::ffff:0:0:0/96");
const NAT64 = ipaddr.IPv6.parseCIDR("64:ff9b::/96");
const SIX_TO_FOUR = ipaddr.IPv6.parseCIDR("2002::/16");

function forbiddenIPv4(address: ipaddr.IPv4): boolean {
  return IPV4_RANGES.some((range) => address.match(range));
}

function embeddedIPv4(bytes: readonly number[], offset: number): ipaddr.IPv4 {
  return new ipaddr.IPv4(bytes.slice(offset, offset + 4));
}

function forbiddenIPv6(address: ipaddr.IPv6): boolean {
  const bytes = address.toByteArray();
  // Forms that carry an IPv4 address are as forbidden as that address.
  if (address.match(IPV4_MAPPED) || address.match(IPV4_TRANSLATED) || address.match(NAT64)) {
    return forbiddenIPv4(embeddedIPv4(bytes, 12));
  }
  if (address.match(SIX_TO_FOUR)) return forbiddenIPv4(embeddedIPv4(bytes, 2));
  return IPV6_RANGES.some((range) => address.match(range));
}

/** Dotted, decimal, octal or hex IPv4 forms that the WHATWG URL parser normalizes (e.g. `0x7f.1`). */
const NUMERIC_HOST = /^[0-9a-fA-FxX.]+$/;

/** The canonical IP for an address string, or null when it is not one. */
function parseAddress(input: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  let text = input.trim();
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  if (net.isIP(text) === 0 && NUMERIC_HOST.test(text)) {
    try {
      text = new URL(`http://${text}/`).hostname;
    } catch {
      return null;
    }
  }
  const zone = text.indexOf("%");
  const bare = zone === -1 ? text : text.slice(0, zone);
  if (net.isIP(bare) === 0) return null;
  try {
    return ipaddr.parse(bare);
  } catch {
    return null;
  }
}

/**
 * True when a request must not go to this address: loopback, private, link-local, unspecified,
 * CGNAT, multicast, reserved and the other ranges in {@link FORBIDDEN_IPV4_RANGES} and
 * {@link FORBIDDEN_IPV6_RANGES}; IPv4-mapped (`::ffff:a.b.c.d`), IPv4-translated, NAT64
 * (`64:ff9b::/96`) and 6to4 (`2002::/16`) addresses are judged by the IPv4 address they embed.
 * Accepts dotted quads, IPv6 (optionally bracketed or with a zone) and the decimal/octal/hex IPv4
 * forms URLs allow. Anything that is not an IP address counts as forbidden (fail closed).
 */
export function isForbiddenAddress(address: string): boolean {
  const parsed = parseAddress(address);
  if (!parsed) return true;
  return parsed.kind() === "ipv4" ? forbiddenIPv4(parsed as ipaddr.IPv4) : forbiddenIPv6(parsed as ipaddr.IPv6);
}
