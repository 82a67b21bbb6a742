//! Proxies, as otelcol's Go clients use them: a component's `proxy_url` for every request
//! (Go's `http.ProxyURL`), otherwise `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` as Go's
//! `httpproxy` package reads them, where `localhost` and loopback addresses are never proxied.
//! A plain-HTTP request goes to the proxy as an absolute-form request (many proxies allow
//! `CONNECT` only to port 443); HTTPS and every gRPC connection go through a `CONNECT` tunnel,
//! gRPC always by `HTTPS_PROXY`, as grpc-go does.

use std::net::IpAddr;
use std::sync::Arc;

use http::uri::{Scheme, Uri};
use http::HeaderValue;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};

/// A proxy setting Redline cannot use. `key` is the config key or environment variable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ProxyError {
    pub key: String,
    pub reason: String,
}

/// Which proxy a client's connections go through.
#[derive(Clone, Debug)]
pub struct Proxy {
    matcher: Option<Arc<Matcher>>,
    /// `proxy_url` (proxies loopback too, as Go's `http.ProxyURL`), or the environment.
    explicit: bool,
}

/// How one connection reaches its destination through a proxy.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// `http://host:port` of the proxy.
    pub(crate) proxy: Uri,
    pub(crate) auth: Option<HeaderValue>,
}

impl Default for Proxy {
    /// No proxy.
    fn default() -> Self {
        Self {
            matcher: None,
            explicit: false,
        }
    }
}

impl Proxy {
    /// `proxy_url` when set and not empty, otherwise the environment.
    pub fn from_config(proxy_url: Option<&str>) -> Result<Self, ProxyError> {
        Self::from_lookup(proxy_url, |name| std::env::var(name).ok())
    }

    /// `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (or their lower-case spellings).
    pub fn from_env() -> Self {
        Self::from_lookup(None, |name| std::env::var(name).ok()).unwrap_or_default()
    }

    pub(crate) fn from_lookup(
        proxy_url: Option<&str>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProxyError> {
        if let Some(url) = proxy_url.map(str::trim).filter(|u| !u.is_empty()) {
            check_url("proxy_url", url)?;
            return Ok(Self {
                matcher: Some(Arc::new(Matcher::builder().http(url).https(url).build())),
                explicit: true,
            });
        }
        // As Go: the upper-case name first; an empty value is unset.
        let first = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| lookup(n).filter(|v| !v.is_empty()))
        };
        // As Go: under CGI, HTTP_PROXY may come from a request header and is not trusted.
        let cgi = lookup("REQUEST_METHOD").is_some_and(|m| !m.is_empty());
        let http = if cgi {
            None
        } else {
            first(["HTTP_PROXY", "http_proxy"])
        };
        let https = first(["HTTPS_PROXY", "https_proxy"]);
        if http.is_none() && https.is_none() {
            return Ok(Self::default());
        }
        let mut builder = Matcher::builder();
        if let Some(v) = http {
            builder = builder.http(v);
        }
        if let Some(v) = https {
            builder = builder.https(v);
        }
        if let Some(v) = first(["NO_PROXY", "no_proxy"]) {
            builder = builder.no(v);
        }
        Ok(Self {
            matcher: Some(Arc::new(builder.build())),
            explicit: false,
        })
    }

    /// Whether a proxy that applies to `dst` can be used: a component checks its endpoint at
    /// start, so an unusable proxy stops it there instead of failing every attempt.
    pub fn check(&self, dst: &Uri, grpc: bool) -> Result<(), ProxyError> {
        self.route(dst, grpc).map(|_| ())
    }

    /// The route to `dst`, or `None` to connect directly. `grpc` looks the destination up as
    /// `https`, as grpc-go does for every target. Errors say why a proxy that applies cannot
    /// be used, so a component can refuse to start instead of failing every attempt.
    pub(crate) fn route(&self, dst: &Uri, grpc: bool) -> Result<Option<Route>, ProxyError> {
        let Some(matcher) = &self.matcher else {
            return Ok(None);
        };
        let host = dst.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if loopback && !self.explicit {
            return Ok(None);
        }
        let lookup = if grpc {
            with_scheme(dst, Scheme::HTTPS).map_err(|e| ProxyError {
                key: "endpoint".to_owned(),
                reason: format!("`{dst}`: {e}"),
            })?
        } else {
            dst.clone()
        };
        let Some(intercept) = matcher.intercept(&lookup) else {
            return Ok(None);
        };
        route_of(&intercept).map(Some).map_err(|reason| ProxyError {
            key: if self.explicit {
                "proxy_url"
            } else {
                "HTTP_PROXY/HTTPS_PROXY"
            }
            .to_owned(),
            reason,
        })
    }
}

fn route_of(intercept: &Intercept) -> Result<Route, String> {
    let uri = intercept.uri();
    if uri.scheme() != Some(&Scheme::HTTP) {
        return Err(format!(
            "the proxy `{}://{}` is not supported yet: Redline connects through http:// proxies",
            uri.scheme_str().unwrap_or_default(),
            uri.authority().map(|a| a.host()).unwrap_or_default()
        ));
    }
    Ok(Route {
        proxy: uri.clone(),
        auth: intercept.basic_auth().cloned(),
    })
}

/// A proxy URL as Go takes it: a scheme is optional (`http` then).
fn check_url(key: &str, url: &str) -> Result<(), ProxyError> {
    let with_scheme = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let bad = |reason: String| ProxyError {
        key: key.to_owned(),
        reason,
    };
    let uri = with_scheme
        .parse::<Uri>()
        .map_err(|e| bad(format!("`{url}` is not a URL: {e}")))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad(format!("`{url}` names no host")));
    }
    if uri.scheme() != Some(&Scheme::HTTP) {
        return Err(bad(format!(
            "`{}` proxies are not supported yet: Redline connects through http:// proxies",
            uri.scheme_str().unwrap_or_default()
        )));
    }
    Ok(())
}

/// `uri` with `scheme`, and with its port written out, so that a tunnel or a lookup never
/// guesses it from the other scheme.
pub(crate) fn with_scheme(uri: &Uri, scheme: Scheme) -> Result<Uri, http::Error> {
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    let host = uri.host().unwrap_or_default();
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Uri::builder()
        .scheme(scheme)
        .authority(authority.as_str())
        .path_and_query("/")
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn route(p: &Proxy, dst: &str, grpc: bool) -> Option<String> {
        let dst = dst.parse::<Uri>().expect("uri");
        p.route(&dst, grpc)
            .expect("usable")
            .map(|r| r.proxy.to_string())
    }

    #[test]
    fn the_environment_is_read_as_go_reads_it() {
        let vars = [
            ("HTTP_PROXY", "plain.proxy:3128"),
            ("https_proxy", "http://secure.proxy:3129"),
            ("NO_PROXY", "internal.example, 10.0.0.0/8"),
        ];
        let p = Proxy::from_lookup(None, env(&vars)).expect("proxy");
        assert_eq!(
            route(&p, "http://mimir.example:9009/api/v1/push", false).as_deref(),
            Some("http://plain.proxy:3128/")
        );
        assert_eq!(
            route(&p, "https://otlp.grafana.net/otlp", false).as_deref(),
            Some("http://secure.proxy:3129/")
        );
        // grpc-go looks every target up as https.
        assert_eq!(
            route(&p, "http://tempo.example:4317", true).as_deref(),
            Some("http://secure.proxy:3129/")
        );
        for direct in [
            "http://tempo.internal.example:4317",
            "http://10.1.2.3:4318",
            "http://localhost:4318",
            "http://127.0.0.1:4318",
            "http://[::1]:4318",
        ] {
            assert_eq!(route(&p, direct, false), None, "{direct}");
        }
        let cgi = [
            ("REQUEST_METHOD", "GET"),
            ("HTTP_PROXY", "plain.proxy:3128"),
        ];
        let p = Proxy::from_lookup(None, env(&cgi)).expect("proxy");
        assert_eq!(route(&p, "http://mimir.example:9009", false), None);
        let none = Proxy::from_lookup(None, env(&[])).expect("no proxy");
        assert_eq!(route(&none, "https://otlp.grafana.net", false), None);
    }

    #[test]
    fn proxy_url_takes_every_request_loopback_included_and_ignores_the_environment() {
        let vars = [("NO_PROXY", "*"), ("HTTPS_PROXY", "http://other:1")];
        let p =
            Proxy::from_lookup(Some("http://user:pw@proxy.corp:3128"), env(&vars)).expect("proxy");
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("pw"),
            "credentials stay out of Debug: {shown}"
        );
        let dst = "http://127.0.0.1:4318/v1/traces"
            .parse::<Uri>()
            .expect("uri");
        let r = p.route(&dst, false).expect("usable").expect("proxied");
        assert_eq!(r.proxy.to_string(), "http://proxy.corp:3128/");
        assert_eq!(
            r.auth.expect("credentials"),
            HeaderValue::from_static("Basic dXNlcjpwdw==")
        );
    }

    #[test]
    fn unusable_proxies_are_named() {
        let e = Proxy::from_lookup(Some("socks5://proxy:1080"), env(&[])).expect_err("socks");
        assert_eq!(e.key, "proxy_url");
        assert!(e.reason.contains("socks5"), "{e}");
        // From the environment, only when it applies to the destination.
        let p = Proxy::from_lookup(None, env(&[("HTTPS_PROXY", "https://tls.proxy:443")]))
            .expect("read");
        let dst = "https://otlp.grafana.net".parse::<Uri>().expect("uri");
        let e = p.route(&dst, false).expect_err("https proxy");
        assert!(e.reason.contains("https://tls.proxy"), "{e}");
        let local = "http://127.0.0.1:4317".parse::<Uri>().expect("uri");
        assert!(p.route(&local, true).expect("direct").is_none());
    }
}
