//! Who the client is: its address and user agent, decided once per request and put in the
//! request's extensions as a [`Client`] for rate limits and session records.
//!
//! The address is the socket peer's. Only when that peer is a configured trusted proxy
//! (`KFACTOR_TRUSTED_PROXIES`) is the proxy's header (`KFACTOR_CLIENT_IP_HEADER`, default
//! `X-Forwarded-For`) believed, and then its hops are read from the nearest one outwards,
//! skipping other trusted proxies: the first address no trusted proxy vouches for is the
//! client. Anything a client writes further left is ignored.
use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, HeaderMap},
    middleware::Next,
    response::Response,
};

use super::AppState;
use crate::{config::Safety, domain::ratelimit::Client};

/// Middleware: inserts the request's [`Client`].
pub async fn identify(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = client_ip(&app.svc.config.safety, peer, req.headers());
    let ua = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let client = Client::new(ip, ua);
    req.extensions_mut().insert(client);
    next.run(req).await
}

/// One hop of a forwarding header: `203.0.113.5`, `203.0.113.5:443`, `[2001:db8::1]:443`,
/// `"2001:db8::1"`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(sa) = hop.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

/// The client's address (see the module documentation).
pub fn client_ip(safety: &Safety, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
    let Some(peer) = peer else {
        return IpAddr::from([0, 0, 0, 0]);
    };
    if !safety.is_trusted_proxy(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all(safety.client_ip_header.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(parse_hop)
        .collect::<Option<Vec<_>>>()
        // A malformed hop: nothing left of it can be trusted; the proxy is the client.
        .unwrap_or_default();
    hops.iter()
        .rev()
        .find(|ip| !safety.is_trusted_proxy(**ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn safety(proxies: &[&str]) -> Safety {
        let mut s = Config::for_database("sqlite::memory:").safety;
        s.trusted_proxies = proxies.iter().map(|p| p.parse().unwrap()).collect();
        s
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let none = safety(&[]);
        assert_eq!(
            client_ip(&none, ip("198.51.100.7"), &xff("203.0.113.5")),
            ip("198.51.100.7").unwrap(),
            "an untrusted peer's header is ignored"
        );
        let s = safety(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(&s, ip("10.0.0.2"), &xff("203.0.113.5")),
            ip("203.0.113.5").unwrap()
        );
        assert_eq!(
            client_ip(&s, ip("10.0.0.2"), &xff("1.1.1.1, 203.0.113.5, 10.0.0.9")),
            ip("203.0.113.5").unwrap(),
            "hops are read from the nearest; what the client wrote to the left is ignored"
        );
        assert_eq!(
            client_ip(&s, ip("10.0.0.2"), &xff("[2001:db8::1]:443")),
            ip("2001:db8::1").unwrap()
        );
        assert_eq!(
            client_ip(&s, ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2").unwrap(),
            "no header: the proxy itself"
        );
        assert_eq!(
            client_ip(&s, ip("10.0.0.2"), &xff("203.0.113.5, garbage")),
            ip("10.0.0.2").unwrap()
        );
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let a = Client::new("2001:db8:1:2:aaaa::1".parse().unwrap(), None);
        let b = Client::new("2001:db8:1:2:bbbb::9".parse().unwrap(), None);
        assert_eq!(a.ip_key(), b.ip_key());
        let v4 = Client::new("::ffff:192.0.2.1".parse().unwrap(), Some("curl/8\n"));
        assert_eq!(v4.ip_key(), "192.0.2.1");
        assert_eq!(v4.user_agent.as_deref(), Some("curl/8"));
    }
}
