//! Who the client is, behind proxies: the one place a service decides which address a request
//! came from.
//!
//! `X-Forwarded-For` is a list each proxy appends its peer to, so only its right end was written
//! by proxies this server trusts; everything to the left of the first untrusted address is the
//! client's own claim. The client address is therefore the right-most address in the header
//! that is not a trusted proxy, and the header is read at all only when the connection itself
//! comes from a trusted proxy ([`ProxySettings`](crate::config::ProxySettings)).

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The address of the client that made a request arriving from `peer`: `peer` itself unless it
/// is one of `trusted` proxies; then the right-most address in `X-Forwarded-For` that is not a
/// trusted proxy (or the left-most, when all are). An entry that is not an address ends the
/// walk: the last trusted hop is the answer, as nothing it forwarded can be read.
pub fn client_address(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    let mut client = canonical(peer.ip());
    if !is_trusted(&client) {
        return client;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for entry in entries.into_iter().rev() {
        let Some(address) = parse_entry(entry) else {
            break;
        };
        client = address;
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|address| address.ip()))
        .map(canonical)
}

/// IPv4 addresses seen through an IPv6 socket (`::ffff:127.0.0.1`) as the IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn loopback() -> Vec<IpNet> {
        vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
    }

    fn from(peer: &str, forwarded: &[&'static str]) -> String {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", HeaderValue::from_static(value));
        }
        client_address(peer.parse().unwrap(), &headers, &loopback()).to_string()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        assert_eq!(from("203.0.113.9:4000", &["10.1.2.3"]), "203.0.113.9");
        assert_eq!(from("203.0.113.9:4000", &[]), "203.0.113.9");
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_client() {
        assert_eq!(from("127.0.0.1:4000", &["198.51.100.4"]), "198.51.100.4");
        // The client prepended a forged address; the proxy appended the real one.
        assert_eq!(
            from("127.0.0.1:4000", &["1.1.1.1, 198.51.100.4"]),
            "198.51.100.4"
        );
        // Several trusted hops, over several header lines.
        assert_eq!(
            from("[::1]:4000", &["1.1.1.1, 198.51.100.4", "127.0.0.2"]),
            "198.51.100.4"
        );
        assert_eq!(
            from("[::ffff:127.0.0.1]:4000", &["198.51.100.4:5555"]),
            "198.51.100.4"
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_hop() {
        assert_eq!(
            from("127.0.0.1:4000", &["<script>, 127.0.0.9"]),
            "127.0.0.9"
        );
        assert_eq!(from("127.0.0.1:4000", &["unknown"]), "127.0.0.1");
        assert_eq!(from("127.0.0.1:4000", &[]), "127.0.0.1");
    }
}
