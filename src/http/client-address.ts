import ipaddr from "ipaddr.js";

/**
 * The address a caller is limited by: the peer's, or with `trustedHops` proxies in front of the
 * server, the `X-Forwarded-For` entry the nearest untrusted hop added. IPv4-mapped IPv6 addresses
 * count as IPv4, and an IPv6 caller is grouped by its /64 network (one host usually holds a whole
 * /64, so single addresses would be free to rotate).
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | null | undefined, trustedHops: number): string {
  let address = peer ?? "unknown";
  if (trustedHops > 0 && forwardedFor) {
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor)
      .split(",")
      .map((hop) => hop.trim())
      .filter(Boolean);
    // The peer is the last proxy; each trusted proxy appended the address it received from.
    const chain = [...hops, address];
    address = chain[Math.max(chain.length - 1 - trustedHops, 0)]!;
  }
  return limitKey(address);
}

function limitKey(address: string): string {
  if (!ipaddr.isValid(address)) return address.slice(0, 64); // not an IP (a hostname from a proxy): taken as it is
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === "ipv6" && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  if (parsed.kind() === "ipv4") return parsed.toString();
  const parts = (parsed as ipaddr.IPv6).parts.slice(0, 4);
  return `${parts.map((part) => part.toString(16)).join(":")}::/64`;
}
