//! Egress policy, the SSRF guard (a leaf: the rules check an endpoint's URL against it when
//! it is registered, the dispatcher when it connects).
//!
//! Webhook URLs are chosen by customers, so by default the dispatcher refuses to
//! connect to loopback, private, link-local (cloud metadata), CGNAT and other non-public
//! addresses. The check runs on the *resolved* address, inside the HTTP client's resolver,
//! so a name that resolves to 10.0.0.1 (or is re-pointed there after creation) is refused
//! at connect time. `KFACTOR_WEBHOOK_ALLOW_PRIVATE=true` turns it off.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is refused, or None when it is public.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match () {
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_unspecified() || a == 0 => "an unspecified address",
        _ if ip.is_private() => "a private address",
        _ if ip.is_link_local() => "a link-local (cloud metadata) address",
        _ if a == 100 && (64..128).contains(&b) => "a CGNAT address",
        _ if a == 192 && b == 0 && c == 0 => "an IETF protocol address",
        _ if a == 198 && (18..20).contains(&b) => "a benchmarking address",
        _ if ip.is_multicast() || ip.is_broadcast() || a >= 240 => {
            "a multicast or reserved address"
        }
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let seg = ip.segments();
    Some(match () {
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_unspecified() => "an unspecified address",
        _ if (seg[0] & 0xfe00) == 0xfc00 => "a private (unique local) address",
        _ if (seg[0] & 0xffc0) == 0xfe80 => "a link-local address",
        _ if ip.is_multicast() => "a multicast address",
        // NAT64 (64:ff9b::/96) and IPv4-compatible (::/96) addresses embed an IPv4 address.
        _ if (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0; 4]) || seg[0..6] == [0; 6] => {
            let v4 = Ipv4Addr::new(
                (seg[6] >> 8) as u8,
                seg[6] as u8,
                (seg[7] >> 8) as u8,
                seg[7] as u8,
            );
            return forbidden_v4(v4);
        }
        // 6to4 (2002::/16) embeds one too.
        _ if seg[0] == 0x2002 => {
            let v4 = Ipv4Addr::new(
                (seg[1] >> 8) as u8,
                seg[1] as u8,
                (seg[2] >> 8) as u8,
                seg[2] as u8,
            );
            return forbidden_v4(v4);
        }
        _ => return None,
    })
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

/// The refusal message recorded as the attempt's error.
pub fn refusal(host: &str, ip: IpAddr, why: &str) -> String {
    format!(
        "refused to connect: {host} resolves to {ip}, {why} (set KFACTOR_WEBHOOK_ALLOW_PRIVATE=true to allow)"
    )
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
            let mut refused = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match forbidden(a.ip()) {
                    Some(why) => {
                        refused.get_or_insert_with(|| refusal(&host, a.ip(), why));
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                let msg = refused.unwrap_or_else(|| format!("{host} did not resolve"));
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
    fn refuses_non_public_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ] {
            assert!(forbidden(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "100.128.0.1",
        ] {
            assert!(forbidden(ip.parse().unwrap()).is_none(), "{ip}");
        }
    }

    #[test]
    fn literal_addresses_in_urls_are_refused_names_are_left_to_the_resolver() {
        let lit = |u: &str| literal(&url::Url::parse(u).unwrap()).map(|(ip, _)| ip.to_string());
        assert_eq!(lit("https://10.0.0.1/hook").as_deref(), Some("10.0.0.1"));
        assert_eq!(lit("https://[::1]:8443/").as_deref(), Some("::1"));
        // The URL parser normalizes other spellings of an IPv4 address.
        assert_eq!(lit("https://0x7f000001/").as_deref(), Some("127.0.0.1"));
        assert_eq!(lit("https://2130706433/").as_deref(), Some("127.0.0.1"));
        assert_eq!(lit("https://93.184.216.34/"), None);
        assert_eq!(lit("https://localhost/"), None);
        assert_eq!(lit("https://example.com/"), None);
    }
}
