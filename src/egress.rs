//! Egress policy, the SSRF guard (a leaf: the rules check an endpoint's URL against it when
//! it is registered, the dispatcher when it connects).
//!
//! Webhook URLs are chosen by customers, so by default the dispatcher refuses to
//! connect to anything but public unicast addresses: loopback, private, link-local (cloud
//! metadata), CGNAT, documentation, benchmarking, multicast, reserved and every other block of
//! the IANA IPv4 and IPv6 Special-Purpose Address Registries. The check runs on the *resolved*
//! address, inside the HTTP client's resolver, so a name that resolves to 10.0.0.1 (or is
//! re-pointed there after creation) is refused at connect time. `KFACTOR_WEBHOOK_ALLOW_PRIVATE=true`
//! turns it off.
//!
//! The refusal never names the address: an org admin could otherwise learn what internal
//! names resolve to by pointing an endpoint at them.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What a refused attempt or endpoint is told, always the same words, never the address.
pub const REFUSED: &str = "refused: private address";

/// Why an address is refused (for operators' logs, never for customers), or None when it is
/// public.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// Whether `ip` lies in `net/len`.
fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// IPv4 blocks refused besides the ones std names (loopback, private, link-local,
/// multicast, broadcast): the IANA IPv4 Special-Purpose Address Registry, checked entry by
/// entry (2025 edition), plus the reserved 240.0.0.0/4.
const V4_SPECIAL: &[([u8; 4], u32, &str)] = &[
    ([0, 0, 0, 0], 8, "\"this network\""),
    ([100, 64, 0, 0], 10, "shared (CGNAT)"),
    // 192.0.0.0/24 covers DS-Lite, PCP and TURN anycast and NAT64 discovery.
    ([192, 0, 0, 0], 24, "IETF protocol assignments"),
    ([192, 0, 2, 0], 24, "documentation (TEST-NET-1)"),
    ([192, 31, 196, 0], 24, "AS112"),
    ([192, 52, 193, 0], 24, "AMT"),
    ([192, 88, 99, 0], 24, "deprecated 6to4 relay anycast"),
    ([192, 175, 48, 0], 24, "AS112 direct delegation"),
    ([198, 18, 0, 0], 15, "benchmarking"),
    ([198, 51, 100, 0], 24, "documentation (TEST-NET-2)"),
    ([203, 0, 113, 0], 24, "documentation (TEST-NET-3)"),
    ([240, 0, 0, 0], 4, "reserved"),
];

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    Some(match () {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local (cloud metadata)",
        _ if ip.is_multicast() || ip.is_broadcast() => "multicast or broadcast",
        _ => {
            return V4_SPECIAL
                .iter()
                .find(|(net, len, _)| in_v4(ip, *net, *len))
                .map(|(_, _, why)| *why)
        }
    })
}

/// Whether `ip` lies in `net/len`.
fn in_v6(ip: Ipv6Addr, net: [u16; 8], len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// IPv6 blocks inside global unicast (2000::/3) that the IANA IPv6 Special-Purpose Address
/// Registry sets apart (2025 edition). Everything outside 2000::/3 is refused anyway, which
/// covers ::/128, ::1, 100::/64 (discard), 100:0:0:1::/64 (dummy), 64:ff9b:1::/48 (local
/// NAT64), 5f00::/16 (SRv6 SIDs), fc00::/7, fe80::/10, fec0::/10 (site-local) and ff00::/8.
const V6_SPECIAL: &[([u16; 8], u32, &str)] = &[
    // 2001::/23 covers Teredo (2001::/32), benchmarking, ORCHID, AMT, AS112-v6, drone ids.
    (
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "IETF protocol assignments",
    ),
    ([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32, "documentation"),
    (
        [0x2620, 0x004f, 0x8000, 0, 0, 0, 0, 0],
        48,
        "AS112 direct delegation",
    ),
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation"),
];

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let embedded = |hi: u16, lo: u16| {
        forbidden_v4(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        ))
    };
    let seg = ip.segments();
    // These embed an IPv4 address, which decides: IPv4-mapped (::ffff:0:0/96),
    // IPv4-compatible (::/96, deprecated), the well-known NAT64 prefix (64:ff9b::/96) and
    // 6to4 (2002::/16).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    if seg[0..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return embedded(seg[6], seg[7]).or(Some("IPv4-compatible"));
    }
    if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        return embedded(seg[6], seg[7]);
    }
    if seg[0] == 0x2002 {
        return embedded(seg[1], seg[2]);
    }
    if !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return Some(match () {
            _ if ip.is_loopback() => "loopback",
            _ if ip.is_unspecified() => "unspecified",
            _ if ip.is_multicast() => "multicast",
            _ if (seg[0] & 0xfe00) == 0xfc00 => "unique local",
            _ if (seg[0] & 0xffc0) == 0xfe80 => "link-local",
            _ if (seg[0] & 0xffc0) == 0xfec0 => "site-local",
            _ => "not global unicast",
        });
    }
    V6_SPECIAL
        .iter()
        .find(|(net, len, _)| in_v6(ip, *net, *len))
        .map(|(_, _, why)| *why)
}

/// The address a URL names literally (`https://10.0.0.1/`, `https://[::1]/`) and why it is
/// refused, or None for a name or a public address. A literal address never reaches the
/// resolver, so [`GuardedResolver`] cannot see it: this is the guard's half for literals,
/// applied where an endpoint is saved and again before every attempt.
pub fn literal(url: &url::Url) -> Option<(IpAddr, &'static str)> {
    let ip = match url.host()? {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => IpAddr::V6(v6),
        url::Host::Domain(_) => return None,
    };
    forbidden(ip).map(|why| (ip, why))
}

/// A DNS resolver that drops every non-public address and fails when none is left.
#[derive(Clone, Debug, Default)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let resolved = addrs.len();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| forbidden(a.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let msg = if resolved > 0 {
                    REFUSED.to_string()
                } else {
                    format!("{host} did not resolve")
                };
                return Err(msg.into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The resolver as reqwest wants it.
pub fn resolver() -> Arc<GuardedResolver> {
    Arc::new(GuardedResolver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_special_purpose_block() {
        for ip in [
            // IPv4 Special-Purpose Address Registry, one address of each entry (and edges).
            "0.0.0.0",
            "0.255.255.255",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.9",
            "192.0.0.170",
            "192.0.2.1",
            "192.31.196.1",
            "192.52.193.1",
            "192.88.99.1",
            "192.168.1.1",
            "192.175.48.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6 Special-Purpose Address Registry.
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::a00:1",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "64:ff9b:1:ffff::8.8.8.8",
            "100::1",
            "100:0:0:1::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:1::1",
            "2001:2::1",
            "2001:3::1",
            "2001:4:112::1",
            "2001:10::1",
            "2001:20::1",
            "2001:30::1",
            "2001:1ff:ffff::1",
            "2001:db8::1",
            "2002:7f00:1::",
            "2002:a00:1::",
            "2620:4f:8000::1",
            "3fff::1",
            "3fff:fff:ffff::1",
            "5f00::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "feff:ffff::1",
            "ff02::1",
        ] {
            assert!(forbidden(ip.parse().unwrap()).is_some(), "{ip}");
        }
    }

    #[test]
    fn lets_public_addresses_through() {
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "192.0.3.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.254",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2001:200::1",
            "2001:4860:4860::8888",
            "2002:808:808::",
            "2606:4700:4700::1111",
            "2620:4f:8001::1",
            "3fff:1000::1",
        ] {
            assert_eq!(forbidden(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
