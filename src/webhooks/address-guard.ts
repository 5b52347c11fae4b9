/**
 * SSRF protection for webhook delivery.
 *
 * Two checks, because either alone can be bypassed:
 * - `checkEndpointUrl` when an endpoint is created or updated (and again before each delivery, because the
 *   operator's allow-list may have changed): scheme, credentials, literal-IP and `localhost` hosts.
 * - `guardedLookup` at connect time, after DNS: a host name that resolves to a refused address is never
 *   connected to. Node skips `lookup` for literal IPs, which is why those are judged by the URL check.
 *
 * Refused: every address that is not publicly routable unicast (loopback, private, link-local, CGNAT,
 * multicast, reserved, documentation, benchmarking, cloud metadata, ...) including IPv6 addresses that
 * embed such an IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4), and the special-purpose 2001::/23
 * (Teredo, whose IPv4 address is disguised, among them). The operator's allow-list
 * (WEBHOOK_ALLOWED_TARGETS) overrides every refusal. An allow-listed IPv4 range also covers its
 * IPv4-mapped IPv6 form (it is the same host); NAT64 and 6to4 forms must be allow-listed as IPv6.
 */
import { BlockList, isIP, type LookupFunction } from 'node:net';
import dns, { type LookupAddress, type LookupAllOptions } from 'node:dns';

export const WEBHOOK_TARGET_REFUSED = 'ERR_WEBHOOK_TARGET_REFUSED';

export interface AllowList {
  /** The CIDRs as configured, for logs and diagnostics. */
  readonly cidrs: readonly string[];
  includes(ip: string): boolean;
}

export type AddressVerdict = { allowed: true } | { allowed: false; reason: string };
export type UrlVerdict = { ok: true } | { ok: false; reason: string };

/**
 * A host name that resolved to a refused address. The message, which an attempt's log shows the tenant, does not
 * say the address: it would map the operator's internal DNS for them. `reason` has it, for tests and debugging.
 */
export class WebhookTargetRefusedError extends Error {
  readonly code = WEBHOOK_TARGET_REFUSED;
  readonly hostname: string;
  readonly reason: string;

  constructor(hostname: string, reason: string) {
    super(`webhook target ${hostname} refused: it resolves to an address deliveries may not go to (see WEBHOOK_ALLOWED_TARGETS)`);
    this.name = 'WebhookTargetRefusedError';
    this.hostname = hostname;
    this.reason = reason;
  }
}

type Family = 'ipv4' | 'ipv6';

function rangesMatcher(family: Family, cidrs: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [network = '', prefix] = cidr.split('/');
    list.addSubnet(network, Number(prefix), family);
  }
  return (address) => list.check(address, family);
}
const ipv4Ranges = (...cidrs: string[]) => rangesMatcher('ipv4', cidrs);
const ipv6Ranges = (...cidrs: string[]) => rangesMatcher('ipv6', cidrs);

// Labels read after "<address> is". First match wins: metadata before link-local, broadcast before reserved.
const REFUSED_IPV4 = [
  // Azure's WireServer is a public address reachable only from inside Azure, as sensitive as 169.254.169.254.
  { label: 'the cloud metadata service', contains: ipv4Ranges('169.254.169.254/32', '168.63.129.16/32') },
  { label: 'an unspecified address (0.0.0.0/8)', contains: ipv4Ranges('0.0.0.0/8') },
  { label: 'a loopback address', contains: ipv4Ranges('127.0.0.0/8') },
  { label: 'a private address (RFC 1918)', contains: ipv4Ranges('10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16') },
  { label: 'a shared CGNAT address (100.64.0.0/10)', contains: ipv4Ranges('100.64.0.0/10') },
  { label: 'a link-local address', contains: ipv4Ranges('169.254.0.0/16') },
  { label: 'an IETF protocol assignment (192.0.0.0/24)', contains: ipv4Ranges('192.0.0.0/24') },
  { label: 'a documentation address', contains: ipv4Ranges('192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24') },
  { label: 'a benchmarking address (198.18.0.0/15)', contains: ipv4Ranges('198.18.0.0/15') },
  { label: 'a multicast address', contains: ipv4Ranges('224.0.0.0/4') },
  { label: 'the broadcast address', contains: ipv4Ranges('255.255.255.255/32') },
  { label: 'a reserved address (240.0.0.0/4)', contains: ipv4Ranges('240.0.0.0/4') },
];

const REFUSED_IPV6 = [
  { label: 'an unspecified address', contains: ipv6Ranges('::/128') },
  { label: 'a loopback address', contains: ipv6Ranges('::1/128') },
  { label: 'the cloud metadata service', contains: ipv6Ranges('fd00:ec2::254/128') },
  { label: 'a deprecated IPv4-compatible address', contains: ipv6Ranges('::/96') },
  { label: 'a unique local (private) address', contains: ipv6Ranges('fc00::/7') },
  { label: 'a link-local address', contains: ipv6Ranges('fe80::/10') },
  { label: 'a multicast address', contains: ipv6Ranges('ff00::/8') },
  { label: 'a documentation address', contains: ipv6Ranges('2001:db8::/32', '3fff::/20') },
  { label: 'a benchmarking address (2001:2::/48)', contains: ipv6Ranges('2001:2::/48') },
  // Like 192.0.0.0/24: special-purpose, no webhook receiver's. Among them Teredo (2001::/32), which tunnels
  // to an IPv4 address it carries disguised, so checking the address it names would judge the wrong host.
  { label: 'an IETF protocol assignment (2001::/23, Teredo included)', contains: ipv6Ranges('2001::/23') },
  // RFC 8215 local-use translation is never globally routable, whatever IPv4 address it carries.
  { label: 'a local-use NAT64 address (64:ff9b:1::/48)', contains: ipv6Ranges('64:ff9b:1::/48') },
];

/** IPv6 forms that carry an IPv4 address (in two 16-bit groups from `ipv4Hextet`): as safe as that address. */
const EMBEDDING_IPV6 = [
  { label: 'an IPv4-mapped address', contains: ipv6Ranges('::ffff:0:0/96'), ipv4Hextet: 6 },
  { label: 'a NAT64 address', contains: ipv6Ranges('64:ff9b::/96'), ipv4Hextet: 6 },
  { label: 'a 6to4 address', contains: ipv6Ranges('2002::/16'), ipv4Hextet: 1 },
];

const isGlobalUnicastIpv6 = ipv6Ranges('2000::/3');

/** The entries of a comma-separated list of addresses and CIDRs, as written (an empty entry is none). */
export function cidrEntries(text: string): string[] {
  return text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

export function parseCidrList(text: string): AllowList {
  const cidrs = cidrEntries(text);
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [network = '', prefixText, ...extra] = cidr.split('/');
    const family = network.includes('%') ? undefined : familyOf(network);
    const maxPrefix = family === 'ipv4' ? 32 : 128;
    // A bare address means just that host.
    const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
    const isValidPrefix = prefixText === undefined || (/^\d{1,3}$/.test(prefixText) && prefix <= maxPrefix);
    if (family === undefined || extra.length > 0 || !isValidPrefix) {
      throw new Error(`"${cidr}" is not a CIDR range (expected an IP address with an optional /prefix, e.g. 127.0.0.0/8 or ::1/128)`);
    }
    list.addSubnet(network, prefix, family);
  }
  return {
    cidrs,
    // BlockList matches IPv4 rules against IPv4-mapped IPv6 addresses too.
    includes: (ip) => {
      const address = withoutZone(ip);
      const family = familyOf(address);
      return family !== undefined && list.check(address, family);
    },
  };
}

export function checkAddress(ip: string, allow: AllowList): AddressVerdict {
  const address = withoutZone(ip);
  const family = familyOf(address);
  if (family === undefined) return { allowed: false, reason: `${ip} is not an IP address` };
  if (allow.includes(address)) return { allowed: true };
  const refusal = family === 'ipv4' ? refusalOfIpv4(address) : refusalOfIpv6(address);
  return refusal === undefined ? { allowed: true } : { allowed: false, reason: `${ip} is ${refusal}` };
}

const PLAIN_HTTP_REFUSED = 'plain http is only allowed to allow-listed addresses; use https';

export function checkEndpointUrl(text: string, allow: AllowList): UrlVerdict {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, reason: 'not a valid absolute URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return { ok: false, reason: 'only http and https URLs can receive webhooks' };
  }
  if (url.username !== '' || url.password !== '') {
    return { ok: false, reason: 'the URL must not contain credentials' };
  }
  if (url.port === '0') return { ok: false, reason: 'port 0 cannot receive connections' };
  // The URL parser has already turned 2130706433, 0x7f.1, 017700000001 and friends into dotted IPv4.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const address = addressWithoutDns(host);
  if (address === undefined) {
    // Where a name resolves can change after today, so an allow-list cannot vouch for it: names need TLS.
    return url.protocol === 'https:' ? { ok: true } : { ok: false, reason: PLAIN_HTTP_REFUSED };
  }
  const verdict = checkAddress(address, allow);
  if (!verdict.allowed) {
    const subject = address === host ? '' : `${host}: `;
    return { ok: false, reason: `${subject}${verdict.reason}; an operator can allow it with WEBHOOK_ALLOWED_TARGETS` };
  }
  if (url.protocol === 'http:' && !allow.includes(address)) return { ok: false, reason: PLAIN_HTTP_REFUSED };
  return { ok: true };
}

/**
 * A `dns.lookup` replacement for `http.request`'s `lookup` option: it resolves every
 * address of the host and fails with `ERR_WEBHOOK_TARGET_REFUSED` before any connection if one of them is
 * refused, so a name whose answers mix public and private addresses cannot be used to reach the private one.
 * Answers in the shape the caller asked for (`all: true` → the list, otherwise the first address).
 */
export function guardedLookup(
  allow: AllowList,
  lookup: (
    hostname: string,
    options: LookupAllOptions,
    callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
  ) => void = dns.lookup,
): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const [first] = addresses;
      if (first === undefined) return callback(notFound(hostname), []);
      for (const { address } of addresses) {
        const verdict = checkAddress(address, allow);
        if (!verdict.allowed) return callback(new WebhookTargetRefusedError(hostname, verdict.reason), []);
      }
      if (options.all) callback(null, addresses);
      else callback(null, first.address, first.family);
    });
  };
}

function refusalOfIpv4(address: string): string | undefined {
  return REFUSED_IPV4.find((range) => range.contains(address))?.label;
}

function refusalOfIpv6(address: string): string | undefined {
  const refused = REFUSED_IPV6.find((range) => range.contains(address));
  if (refused) return refused.label;
  const embedding = EMBEDDING_IPV6.find((range) => range.contains(address));
  if (embedding) {
    const ipv4 = embeddedIpv4(address, embedding.ipv4Hextet);
    const refusal = refusalOfIpv4(ipv4);
    return refusal === undefined ? undefined : `${embedding.label} of ${ipv4}, ${refusal}`;
  }
  return isGlobalUnicastIpv6(address) ? undefined : 'not a global unicast address';
}

function embeddedIpv4(ipv6: string, firstHextet: number): string {
  const hextets = expandIpv6(ipv6).slice(firstHextet, firstHextet + 2);
  return hextets.flatMap((hextet) => [hextet >> 8, hextet & 0xff]).join('.');
}

/** The eight 16-bit groups of a valid IPv6 address: `::` expanded, a dotted IPv4 tail converted. */
function expandIpv6(ipv6: string): number[] {
  const hexOnly = ipv6.replace(
    /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
    (_tail, a: string, b: string, c: string, d: string) =>
      `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
  );
  const [head = '', tail = ''] = hexOnly.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const headGroups = groups(head);
  const tailGroups = groups(tail);
  return [...headGroups, ...Array<number>(8 - headGroups.length - tailGroups.length).fill(0), ...tailGroups];
}

/** The address a URL host denotes without DNS: a literal IP, or loopback for `localhost` names (RFC 6761). */
function addressWithoutDns(host: string): string | undefined {
  if (isIP(host) !== 0) return host;
  const name = host.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost') ? '127.0.0.1' : undefined;
}

function familyOf(address: string): Family | undefined {
  const version = isIP(address);
  return version === 4 ? 'ipv4' : version === 6 ? 'ipv6' : undefined;
}

/** `fe80::1%eth0` → `fe80::1`: the zone names an interface, it does not change the address class. */
function withoutZone(ip: string): string {
  const percent = ip.indexOf('%');
  return percent === -1 ? ip : ip.slice(0, percent);
}

function notFound(hostname: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
}
