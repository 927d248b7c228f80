/**
 * GIDs: formatting, the IPv4 address inside a RoCEv2 IPv4-mapped GID, and which GID index
 * of a port is the RoCEv2 IPv4 one (from sysfs, as `show_gids` does).
 *
 * @module
 */

/** Formats a 16-byte GID as an IPv6 address (`::ffff:192.0.2.1` for IPv4-mapped ones). */
export function formatGid(gid: Uint8Array): string {
  const ipv4 = ipv4OfGid(gid);
  if (ipv4) return `::ffff:${ipv4}`;
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((gid[i] << 8) | gid[i + 1]).toString(16));
  return words.join(":");
}

/** The IPv4 address of an IPv4-mapped GID (`::ffff:a.b.c.d`), else `undefined`. */
export function ipv4OfGid(gid: Uint8Array): string | undefined {
  for (let i = 0; i < 10; i++) if (gid[i] !== 0) return undefined;
  if (gid[10] !== 0xff || gid[11] !== 0xff) return undefined;
  return `${gid[12]}.${gid[13]}.${gid[14]}.${gid[15]}`;
}

/** The IPv4-mapped GID of an address. */
export function gidOfIpv4(address: string): Uint8Array {
  const parts = address.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new RangeError(`'${address}' is not an IPv4 address`);
  }
  const gid = new Uint8Array(16);
  gid[10] = 0xff;
  gid[11] = 0xff;
  gid.set(parts, 12);
  return gid;
}

/** The GID type sysfs reports for an index (`RoCE v2`, `IB/RoCE v1`), if readable. */
export function gidType(device: string, port: number, index: number): string | undefined {
  try {
    return Deno.readTextFileSync(
      `/sys/class/infiniband/${device}/ports/${port}/gid_attrs/types/${index}`,
    ).trim();
  } catch {
    return undefined;
  }
}
