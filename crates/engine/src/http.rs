//! `http.request`, with a destination allow-list.
//!
//! The host is resolved before connecting and every address it resolves to is checked:
//! loopback, private (RFC 1918, CGNAT), link-local (which covers the cloud metadata address
//! 169.254.169.254), unique-local, multicast, broadcast and unspecified addresses are refused
//! unless the host name or the address is in `EngineConfig::http_allow` (host names or CIDRs).
//! The connection then goes to exactly the checked addresses (no second lookup an attacker
//! could rebind), and redirects are not followed: a 3xx is returned as the result, so a
//! redirect can never reach a refused address.

use crate::action::{Action, ActionContext, ActionError};
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub struct HttpRequest {
    allow_hosts: Vec<String>,
    allow_nets: Vec<(IpAddr, u8)>,
    body_limit: usize,
}

/// `10.0.0.0/8`, `::1/128`, or a bare address (a host-length prefix).
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, Some(l.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then_some((addr, len))
}

/// Whether `ip` lies in the network `(address, prefix length)` (from [`parse_cidr`]).
pub fn in_net(ip: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Why an address is not a public destination, if it is not.
pub fn blocked_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return blocked_v4(v4);
            }
            let seg0 = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if seg0 & 0xfe00 == 0xfc00 {
                Some("unique-local")
            } else if seg0 & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else {
                None
            }
        }
    }
}

fn blocked_v4(v4: Ipv4Addr) -> Option<&'static str> {
    let o = v4.octets();
    if v4 == Ipv4Addr::new(169, 254, 169, 254) {
        Some("metadata")
    } else if v4.is_loopback() {
        Some("loopback")
    } else if v4.is_private() {
        Some("private")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("private (CGNAT)")
    } else if v4.is_link_local() {
        Some("link-local")
    } else if v4.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if v4.is_multicast() {
        Some("multicast")
    } else if v4.is_broadcast() {
        Some("broadcast")
    } else {
        None
    }
}

impl HttpRequest {
    pub fn new(allow: &[String], body_limit: usize) -> Self {
        let mut allow_hosts = Vec::new();
        let mut allow_nets = Vec::new();
        for a in allow {
            match parse_cidr(a.trim()) {
                Some(n) => allow_nets.push(n),
                None => allow_hosts.push(a.trim().to_ascii_lowercase()),
            }
        }
        Self {
            allow_hosts,
            allow_nets,
            body_limit,
        }
    }

    /// Resolves `host` and checks every address.
    async fn destinations(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ActionError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(
                Duration::from_secs(10),
                tokio::net::lookup_host((bare, port)),
            )
            .await
            .map_err(|_| ActionError::retry(format!("resolving {host} timed out")))?
            .map_err(|e| ActionError::retry(format!("cannot resolve {host}: {e}")))?
            .collect(),
        };
        if addrs.is_empty() {
            return Err(ActionError::retry(format!("{host} has no address")));
        }
        let host_allowed = self
            .allow_hosts
            .iter()
            .any(|h| h == &bare.to_ascii_lowercase());
        for a in &addrs {
            let ip = a.ip();
            if let Some(why) = blocked_reason(ip)
                && !host_allowed
                && !self.allow_nets.iter().any(|n| in_net(ip, *n))
            {
                return Err(ActionError::fatal(format!(
                    "destination {host} resolves to {ip}, a {why} address: blocked (add it to http_allow to permit)"
                )));
            }
        }
        Ok(addrs)
    }
}

#[async_trait]
impl Action for HttpRequest {
    fn name(&self) -> &str {
        "http.request"
    }

    async fn execute(&self, ctx: &ActionContext, input: &Value) -> Result<Value, ActionError> {
        let url_s = input
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| ActionError::fatal("url: required"))?;
        let url =
            reqwest::Url::parse(url_s).map_err(|e| ActionError::fatal(format!("url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ActionError::fatal("url: only http and https are allowed"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| ActionError::fatal("url: no host"))?
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| ActionError::fatal("url: no port"))?;
        let addrs = self.destinations(&host, port).await?;

        let timeout = input
            .get("timeout")
            .and_then(Value::as_str)
            .and_then(|t| bulwark_playbook::parse_duration(t).ok())
            .unwrap_or(ctx.timeout)
            .min(ctx.timeout);
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout);
        if host.parse::<IpAddr>().is_err() && !host.starts_with('[') {
            builder = builder.resolve_to_addrs(&host, &addrs);
        }
        let client = builder
            .build()
            .map_err(|e| ActionError::fatal(format!("http client: {e}")))?;
        let method_s = input.get("method").and_then(Value::as_str).unwrap_or("GET");
        let method = reqwest::Method::from_bytes(method_s.to_ascii_uppercase().as_bytes())
            .map_err(|_| ActionError::fatal(format!("method: `{method_s}` is not a method")))?;
        let mut req = client
            .request(method, url)
            .header("Idempotency-Key", &ctx.idempotency_key);
        if let Some(h) = input.get("headers").and_then(Value::as_object) {
            for (k, v) in h {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                req = req.header(k.as_str(), v);
            }
        }
        match input.get("body") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => req = req.body(s.clone()),
            Some(v) => req = req.json(v),
        }
        let mut resp = req.send().await.map_err(|e| {
            if e.is_builder() {
                ActionError::fatal(format!("http.request: {e}"))
            } else {
                ActionError::retry(format!("http.request to {host}: {e}"))
            }
        })?;
        let status = resp.status();
        let mut headers = Map::new();
        for (k, v) in resp.headers() {
            headers.insert(
                k.as_str().to_owned(),
                Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            );
        }
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ActionError::retry(format!("http.request reading the body: {e}")))?
        {
            let room = self.body_limit.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        let body_v = serde_json::from_slice::<Value>(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        let code = status.as_u16();
        if code == 429 || status.is_server_error() {
            return Err(ActionError::retry(format!("HTTP {code} from {host}")));
        }
        if status.is_client_error() {
            let snippet: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(ActionError::fatal(format!(
                "HTTP {code} from {host}: {snippet}"
            )));
        }
        let mut out = json!({ "status": code, "headers": headers, "body": body_v });
        if truncated {
            out["truncated"] = Value::Bool(true);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_internal_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "100.64.0.1",
        ] {
            let ip: IpAddr = a.parse().expect("test address");
            assert!(blocked_reason(ip).is_some(), "{a} must be blocked");
        }
        for a in ["8.8.8.8", "2606:4700::1111"] {
            let ip: IpAddr = a.parse().expect("test address");
            assert!(blocked_reason(ip).is_none(), "{a} is public");
        }
    }

    #[test]
    fn cidr_matching() {
        let n = parse_cidr("127.0.0.1/32").expect("cidr");
        assert!(in_net("127.0.0.1".parse().expect("ip"), n));
        assert!(!in_net("127.0.0.2".parse().expect("ip"), n));
        let n = parse_cidr("10.0.0.0/8").expect("cidr");
        assert!(in_net("10.9.9.9".parse().expect("ip"), n));
        assert!(parse_cidr("example.com").is_none());
    }
}
