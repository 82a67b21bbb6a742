//! Where a client connects: otelcol's two forms of an exporter's `endpoint`, `host:port` for
//! gRPC clients (configgrpc) and a URL for HTTP clients (confighttp), parsed with otelcol's
//! rules so every exporter accepts and refuses the same spellings.
//!
//! A server's `endpoint` (`host:port`, Go's net.Listen) is split and bound here too, so every
//! receiver and extension listens on the same spellings.
//!
//! Errors are the reason only; the caller names the key (`endpoint`, `http.endpoint`).

use http::Uri;

/// A gRPC endpoint split into what a channel needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcTarget {
    /// `host:port`, host as written (brackets kept for IPv6).
    pub authority: String,
    pub host: String,
    pub port: u16,
    /// The `https://` scheme was given, which turns TLS on whatever `tls.insecure` says.
    pub https: bool,
}

/// Parses a gRPC `endpoint` as otelcol does: an optional `http://`, `https://` or `dns://`
/// prefix, then `host:port` with a numeric port.
pub fn parse_grpc_endpoint(endpoint: &str) -> Result<GrpcTarget, String> {
    let e = endpoint.trim();
    if e.contains('@') {
        return Err(format!(
            "`{}`: credentials in the endpoint are not supported; use `headers`",
            without_credentials(e)
        ));
    }
    if e.is_empty() {
        return Err("is required (e.g. `tempo:4317`)".into());
    }
    let (rest, https) = if let Some(r) = e.strip_prefix("https://") {
        (r, true)
    } else if let Some(r) = e.strip_prefix("http://") {
        (r, false)
    } else if let Some(r) = e
        .strip_prefix("dns:///")
        .or_else(|| e.strip_prefix("dns://"))
    {
        (r, false)
    } else if e.contains("://") {
        return Err(format!(
            "`{e}`: only http://, https:// and dns:// schemes are supported"
        ));
    } else {
        (e, false)
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(format!("`{e}` must be host:port, without a path"));
    }
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("`{e}` has no port (expected host:port)"))?;
    if host.is_empty() {
        return Err(format!("`{e}` has an empty host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!(
            "`{e}`: write IPv6 addresses in brackets, [::1]:4317"
        ));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("`{e}` has an invalid port `{port}`"))?;
    Ok(GrpcTarget {
        authority: rest.to_owned(),
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
        https,
    })
}

/// An HTTP endpoint: the URL requests go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget {
    pub url: Uri,
    /// The scheme is `https`: for an HTTP client the scheme alone decides TLS.
    pub https: bool,
}

/// Parses an HTTP `endpoint`: `http://host[:port]/path` or `https://…`. Credentials in the
/// URL are refused: they would end up in logs, and `headers` carries them instead.
pub fn parse_http_endpoint(raw: &str) -> Result<HttpTarget, String> {
    // Messages quote the endpoint without its credentials, whatever else is wrong with it.
    let endpoint = &*without_credentials(raw);
    let url: Uri = raw
        .parse()
        .map_err(|e| format!("`{endpoint}` is not a URL: {e}"))?;
    let https = match url.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(other) => {
            return Err(format!(
                "`{endpoint}`: scheme `{other}` is not supported (use http:// or https://)"
            ))
        }
        None => {
            return Err(format!(
                "`{endpoint}` needs a scheme: http://host:port/path"
            ))
        }
    };
    match url.authority() {
        Some(a) if !a.host().is_empty() => {
            if a.as_str().contains('@') {
                return Err(format!(
                    "`{endpoint}`: credentials in the URL are not supported; use `headers` (Authorization)"
                ));
            }
        }
        _ => return Err(format!("`{endpoint}` has no host")),
    }
    Ok(HttpTarget { url, https })
}

/// Splits a server's `endpoint` (`host:port`) as Go's net.SplitHostPort does: the host may
/// be empty, meaning every interface, or a bracketed IPv6 literal; the port is a number.
pub fn split_listen_endpoint(endpoint: &str) -> Result<(String, u16), String> {
    let e = endpoint.trim();
    let (host, port) = e
        .rsplit_once(':')
        .ok_or_else(|| format!("`{endpoint}` is not host:port (missing port)"))?;
    let host = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .ok_or_else(|| format!("`{endpoint}` has an unclosed `[`"))?
    } else if host.contains(':') {
        return Err(format!(
            "`{endpoint}`: an IPv6 address must be written in brackets, e.g. [::1]:4317"
        ));
    } else {
        host
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{endpoint}` has an invalid port `{port}`"))?;
    Ok((host.to_owned(), port))
}

/// Listens on a server's `endpoint` the way Go's net.Listen does: an empty host is every
/// interface, a name listens on one of its addresses (IPv4 first), port 0 picks a free port.
pub async fn listen(endpoint: &str) -> Result<tokio::net::TcpListener, String> {
    let addr = listen_addr(endpoint).await?;
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// The address a server's `endpoint` listens on, as Go's net.Listen picks it: an empty host
/// is every interface, a name is one of its addresses (IPv4 first).
pub async fn listen_addr(endpoint: &str) -> Result<std::net::SocketAddr, String> {
    let (host, port) = split_listen_endpoint(endpoint)?;
    let host = if host.is_empty() {
        "0.0.0.0".to_owned()
    } else {
        host
    };
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve `{endpoint}`: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("`{endpoint}` resolves to no address"))
}

/// confignet's `dialer` section, which otelcol embeds in every address config, servers'
/// included. A listener never dials, and otelcol's listeners ignore it too, so on a server it is
/// accepted and has no effect; its value is still checked as otelcol decodes it.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerDialer {
    #[serde(default, deserialize_with = "crate::duration::deserialize_opt")]
    pub timeout: Option<std::time::Duration>,
}

/// A server's `transport` (otelcol's confignet network type). Redline listens on TCP only;
/// otelcol's other network types are refused by name rather than listened on as TCP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpTransport;

impl<'de> serde::Deserialize<'de> for TcpTransport {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let network = String::deserialize(d)?;
        match network.as_str() {
            "tcp" => Ok(TcpTransport),
            "tcp4" | "tcp6" | "unix" | "unixpacket" => Err(D::Error::custom(format!(
                "`{network}` is an otelcol setting Redline does not support yet (only `tcp` is)"
            ))),
            _ => Err(D::Error::custom(format!(
                "unknown transport `{network}` (only `tcp` is supported)"
            ))),
        }
    }
}

/// The endpoint with any `user:password@` in its authority replaced by `***@`, for messages.
fn without_credentials(endpoint: &str) -> std::borrow::Cow<'_, str> {
    let start = endpoint.find("://").map_or(0, |i| i + 3);
    let rest = &endpoint[start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_len].rfind('@') {
        Some(at) => format!("{}***{}", &endpoint[..start], &rest[at..]).into(),
        None => endpoint.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tcp_is_listened_on_and_other_networks_are_named() {
        use serde::de::value::{Error, StrDeserializer};
        use serde::Deserialize;
        let parse = |t: &str| {
            TcpTransport::deserialize(StrDeserializer::<Error>::new(t)).map_err(|e| e.to_string())
        };
        assert_eq!(parse("tcp"), Ok(TcpTransport));
        assert_eq!(
            parse("unix"),
            Err("`unix` is an otelcol setting Redline does not support yet (only `tcp` is)".into())
        );
        assert_eq!(
            parse("udp"),
            Err("unknown transport `udp` (only `tcp` is supported)".into())
        );
        assert!(parse("").is_err());
    }

    #[test]
    fn listen_endpoints_split_like_go() {
        assert_eq!(
            split_listen_endpoint("0.0.0.0:4317"),
            Ok(("0.0.0.0".to_owned(), 4317))
        );
        assert_eq!(split_listen_endpoint(":4317"), Ok((String::new(), 4317)));
        assert_eq!(split_listen_endpoint("[::1]:0"), Ok(("::1".to_owned(), 0)));
        assert_eq!(
            split_listen_endpoint("localhost:4318"),
            Ok(("localhost".to_owned(), 4318))
        );
        assert!(split_listen_endpoint("localhost").is_err());
        assert!(split_listen_endpoint("::1:4317").is_err());
        assert!(split_listen_endpoint("host:99999").is_err());
        assert!(split_listen_endpoint("[::1:4317").is_err());
    }

    #[tokio::test]
    async fn listen_binds_localhost_on_a_free_port() {
        let listener = listen("localhost:0").await.expect("binds");
        let addr = listener.local_addr().expect("bound");
        assert!(addr.ip().is_loopback() && addr.is_ipv4() && addr.port() != 0);
        let taken = format!("127.0.0.1:{}", addr.port());
        assert!(listen(&taken)
            .await
            .expect_err("in use")
            .contains("cannot listen"));
    }

    #[test]
    fn grpc_endpoints_parse_like_otelcol() {
        let t = parse_grpc_endpoint("tempo:4317").expect("valid");
        assert_eq!(t.authority, "tempo:4317");
        assert!(!t.https);
        assert!(
            parse_grpc_endpoint("https://tempo:4317")
                .expect("valid")
                .https
        );
        assert!(
            !parse_grpc_endpoint("http://tempo:4317/")
                .expect("valid")
                .https
        );
        assert_eq!(
            parse_grpc_endpoint("dns:///tempo:4317")
                .expect("valid")
                .host,
            "tempo"
        );
        assert_eq!(
            parse_grpc_endpoint("[::1]:4317").expect("valid").host,
            "::1"
        );
        for bad in [
            "",
            "tempo",
            "tempo:",
            "tempo:x",
            ":4317",
            "unix:///s",
            "a/b:1",
            "::1:4317",
        ] {
            assert!(
                parse_grpc_endpoint(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn http_endpoints_need_a_scheme_and_a_host() {
        let t = parse_http_endpoint("https://mimir:443/api/v1/push").expect("valid");
        assert!(t.https);
        assert_eq!(t.url.host(), Some("mimir"));
        assert!(
            !parse_http_endpoint("http://prom:9090/api/v1/write")
                .expect("valid")
                .https
        );
        for (bad, says) in [
            ("prom:9090", "scheme"),
            ("ftp://prom/w", "ftp"),
            ("http://user:pw@prom/w", "credentials"),
            ("not a url", "not a URL"),
        ] {
            let e = parse_http_endpoint(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn credentials_never_reach_a_message() {
        for bad in [
            "http://user:s3cret@prom/w",
            "ftp://user:s3cret@prom/w",
            "user:s3cret@prom:9090/w",
            "http://user:s3cret@/w",
        ] {
            let e = parse_http_endpoint(bad).expect_err(bad);
            assert!(!e.contains("s3cret"), "{bad}: {e}");
        }
        for bad in ["user:s3cret@tempo:4317", "https://user:s3cret@tempo:4317"] {
            let e = parse_grpc_endpoint(bad).expect_err(bad);
            assert!(
                !e.contains("s3cret") && e.contains("***@tempo"),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            without_credentials("http://a:b@h:1/p@q"),
            "http://***@h:1/p@q"
        );
        assert_eq!(without_credentials("http://h:1/p@q"), "http://h:1/p@q");
    }
}
