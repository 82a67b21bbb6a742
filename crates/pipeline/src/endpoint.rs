//! Where a client connects: otelcol's two forms of an exporter's `endpoint`, `host:port` for
//! gRPC clients (configgrpc) and a URL for HTTP clients (confighttp), parsed with otelcol's
//! rules so every exporter accepts and refuses the same spellings.
//!
//! Errors are the reason only; the caller names the key (`endpoint`, `http.endpoint`).

use http::Uri;

/// A gRPC endpoint split into what a channel needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcTarget {
    /// `host:port`, host as written (brackets kept for IPv6).
    pub authority: String,
    pub host: String,
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
    port.parse::<u16>()
        .map_err(|_| format!("`{e}` has an invalid port `{port}`"))?;
    Ok(GrpcTarget {
        authority: rest.to_owned(),
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
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
