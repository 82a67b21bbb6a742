//! CORS for browser SDKs, answering as otelcol's confighttp does (it wraps the handler in
//! rs/cors with credentials allowed and `POST` as the only method).
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
//! 204 here, with the allow headers only when the origin, the method and every requested
//! header are allowed: the browser then refuses what is not. Other requests go to the
//! handler; an allowed origin gets `Access-Control-Allow-Origin` on the answer.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method};
use serde::Deserialize;

/// `protocols.http.cors`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed to send, e.g. `https://*.example.com`; `*` allows any. Empty turns
    /// CORS off, as in otelcol.
    pub allowed_origins: Vec<String>,
    /// Request headers a browser may send besides the CORS-safelisted ones. Empty allows
    /// `Accept`, `Content-Type` and `X-Requested-With`, rs/cors's defaults.
    pub allowed_headers: Vec<String>,
    /// Seconds a browser may cache a preflight answer; 0 sends no `Access-Control-Max-Age`.
    pub max_age: u64,
    /// Response headers a page's script may read (`Access-Control-Expose-Headers` on
    /// answers to an allowed origin), written in Go's canonical form as rs/cors does.
    pub exposed_headers: Vec<String>,
}

/// The checks of one server, built once from its config.
#[derive(Clone, Debug)]
pub(crate) struct Cors {
    any_origin: bool,
    /// Each pattern split at its one `*`, if it has one.
    origins: Vec<(String, Option<String>)>,
    /// Lowercase.
    headers: Vec<String>,
    max_age: Option<HeaderValue>,
    exposed: Option<HeaderValue>,
}

/// What a request is, for CORS.
pub(crate) enum Verdict {
    /// A preflight: answer 204 with these headers and do not run the handler.
    Preflight(HeaderMap),
    /// Any other request: run the handler, then add these headers to its answer.
    Simple(HeaderMap),
}

const PREFLIGHT_VARY: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

impl Cors {
    /// `None` when CORS is off (no allowed origins).
    pub(crate) fn new(config: &CorsConfig) -> Option<Self> {
        if config.allowed_origins.is_empty() {
            return None;
        }
        let any_origin = config.allowed_origins.iter().any(|o| o == "*");
        let origins = config
            .allowed_origins
            .iter()
            .map(|o| {
                let o = o.to_ascii_lowercase();
                match o.split_once('*') {
                    Some((prefix, suffix)) => (prefix.to_owned(), Some(suffix.to_owned())),
                    None => (o, None),
                }
            })
            .collect();
        let headers = if config.allowed_headers.is_empty() {
            vec![
                "accept".to_owned(),
                "content-type".to_owned(),
                "x-requested-with".to_owned(),
            ]
        } else {
            config
                .allowed_headers
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect()
        };
        let max_age = (config.max_age > 0).then(|| HeaderValue::from(config.max_age));
        let exposed = config
            .exposed_headers
            .iter()
            .map(|h| canonical_header_key(h))
            .collect::<Vec<_>>()
            .join(", ");
        // A name that is not a valid header value cannot be sent; otelcol would send it
        // broken, Redline leaves the header off.
        let exposed = (!exposed.is_empty())
            .then(|| HeaderValue::from_str(&exposed).ok())
            .flatten();
        Some(Self {
            any_origin,
            origins,
            headers,
            max_age,
            exposed,
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        if self.any_origin {
            return true;
        }
        let origin = origin.to_ascii_lowercase();
        self.origins.iter().any(|(prefix, suffix)| match suffix {
            None => *prefix == origin,
            Some(suffix) => {
                origin.len() >= prefix.len() + suffix.len()
                    && origin.starts_with(prefix.as_str())
                    && origin.ends_with(suffix.as_str())
            }
        })
    }

    fn allow_origin(&self, origin: &HeaderValue, out: &mut HeaderMap) {
        let value = if self.any_origin {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        };
        out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
        out.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }

    pub(crate) fn check(&self, method: &Method, headers: &HeaderMap) -> Verdict {
        let origin = headers.get(ORIGIN);
        let requested_method = headers.get(ACCESS_CONTROL_REQUEST_METHOD);
        let mut out = HeaderMap::new();
        if method == Method::OPTIONS && requested_method.is_some() {
            out.insert(VARY, HeaderValue::from_static(PREFLIGHT_VARY));
            let Some(origin) = origin else {
                return Verdict::Preflight(out);
            };
            let origin_ok = origin.to_str().is_ok_and(|o| self.origin_allowed(o));
            let method_ok = requested_method.is_some_and(|m| m.as_bytes() == b"POST");
            let requested = headers.get(ACCESS_CONTROL_REQUEST_HEADERS);
            let headers_ok = requested.is_none_or(|list| {
                list.to_str().is_ok_and(|list| {
                    list.split(',')
                        .map(|h| h.trim().to_ascii_lowercase())
                        .filter(|h| !h.is_empty())
                        .all(|h| self.headers.contains(&h))
                })
            });
            if origin_ok && method_ok && headers_ok {
                self.allow_origin(origin, &mut out);
                out.insert(
                    ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("POST"),
                );
                if let Some(requested) = requested {
                    out.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
                }
                if let Some(max_age) = &self.max_age {
                    out.insert(ACCESS_CONTROL_MAX_AGE, max_age.clone());
                }
            }
            return Verdict::Preflight(out);
        }
        out.insert(VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = origin {
            if origin.to_str().is_ok_and(|o| self.origin_allowed(o)) {
                self.allow_origin(origin, &mut out);
                if let Some(exposed) = &self.exposed {
                    out.insert(ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone());
                }
            }
        }
        Verdict::Simple(out)
    }
}

/// Go's `http.CanonicalHeaderKey`: each letter that starts a `-`-separated word upper case,
/// the others lower case; a name with a byte that cannot be in a header name stays as it is.
fn canonical_header_key(name: &str) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(token) {
        return name.to_owned();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], headers: &[&str], max_age: u64) -> Cors {
        Cors::new(&CorsConfig {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_headers: headers.iter().map(|s| s.to_string()).collect(),
            max_age,
            exposed_headers: Vec::new(),
        })
        .expect("on")
    }

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn preflight(c: &Cors, origin: &'static str, headers: Option<&'static str>) -> HeaderMap {
        let mut pairs = vec![
            ("origin", origin),
            ("access-control-request-method", "POST"),
        ];
        if let Some(h) = headers {
            pairs.push(("access-control-request-headers", h));
        }
        match c.check(&Method::OPTIONS, &request(&pairs)) {
            Verdict::Preflight(h) => h,
            Verdict::Simple(_) => panic!("a preflight"),
        }
    }

    #[test]
    fn off_without_origins() {
        assert!(Cors::new(&CorsConfig::default()).is_none());
    }

    #[test]
    fn wildcard_origins_match_any_subdomain_depth() {
        let c = cors(&["https://*.example.com", "http://localhost:3000"], &[], 0);
        assert!(c.origin_allowed("https://a.example.com"));
        assert!(c.origin_allowed("https://a.b.example.com"));
        assert!(c.origin_allowed("http://localhost:3000"));
        assert!(!c.origin_allowed("https://example.org"));
        assert!(!c.origin_allowed("http://a.example.com"));
        assert!(!c.origin_allowed("http://localhost:3001"));
    }

    #[test]
    fn preflight_allows_listed_origin_method_and_headers() {
        let c = cors(&["https://*.example.com"], &["X-Custom"], 7200);
        let h = preflight(&c, "https://app.example.com", Some("x-custom"));
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "POST");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "x-custom");
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "7200");
        assert_eq!(h[VARY], PREFLIGHT_VARY);
        // Content-Type is not among the listed headers, so it is not allowed (as rs/cors).
        let h = preflight(&c, "https://app.example.com", Some("content-type,x-custom"));
        assert!(h.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }

    #[test]
    fn preflight_refuses_other_origins_and_methods_with_no_allow_headers() {
        let c = cors(&["https://*.example.com"], &[], 0);
        let h = preflight(&c, "https://evil.org", None);
        assert!(h.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        assert_eq!(h[VARY], PREFLIGHT_VARY);
        let put = request(&[
            ("origin", "https://a.example.com"),
            ("access-control-request-method", "PUT"),
        ]);
        match c.check(&Method::OPTIONS, &put) {
            Verdict::Preflight(h) => assert!(h.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none()),
            Verdict::Simple(_) => panic!("a preflight"),
        }
        // Default headers: the ones browsers ask for when posting JSON.
        let h = preflight(&c, "https://a.example.com", Some("content-type"));
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "content-type");
        assert!(h.get(ACCESS_CONTROL_MAX_AGE).is_none());
    }

    #[test]
    fn simple_requests_get_the_origin_only_when_allowed() {
        let c = cors(&["http://localhost:3000"], &[], 0);
        let allowed = request(&[("origin", "http://localhost:3000")]);
        match c.check(&Method::POST, &allowed) {
            Verdict::Simple(h) => {
                assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "http://localhost:3000");
                assert_eq!(h[VARY], "Origin");
            }
            Verdict::Preflight(_) => panic!("not a preflight"),
        }
        let other = request(&[("origin", "https://evil.org")]);
        match c.check(&Method::POST, &other) {
            Verdict::Simple(h) => assert!(h.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none()),
            Verdict::Preflight(_) => panic!("not a preflight"),
        }
        // A star answers `*`, credentials or not, as rs/cors does.
        let star = cors(&["*"], &[], 0);
        match star.check(&Method::POST, &other) {
            Verdict::Simple(h) => assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "*"),
            Verdict::Preflight(_) => panic!("not a preflight"),
        }
    }

    #[test]
    fn exposed_headers_go_on_answers_to_allowed_origins_in_canonical_form() {
        let c = Cors::new(&CorsConfig {
            allowed_origins: vec!["https://*.example.com".into()],
            exposed_headers: vec!["x-trace-id".into(), "X-REQUEST-ID".into(), "etag".into()],
            ..CorsConfig::default()
        })
        .expect("on");
        let allowed = request(&[("origin", "https://app.example.com")]);
        match c.check(&Method::POST, &allowed) {
            Verdict::Simple(h) => assert_eq!(
                h[ACCESS_CONTROL_EXPOSE_HEADERS],
                "X-Trace-Id, X-Request-Id, Etag"
            ),
            Verdict::Preflight(_) => panic!("not a preflight"),
        }
        let other = request(&[("origin", "https://evil.org")]);
        match c.check(&Method::POST, &other) {
            Verdict::Simple(h) => assert!(h.get(ACCESS_CONTROL_EXPOSE_HEADERS).is_none()),
            Verdict::Preflight(_) => panic!("not a preflight"),
        }
        // A preflight does not carry it, as in rs/cors.
        let h = preflight(&c, "https://app.example.com", Some("content-type"));
        assert!(h.get(ACCESS_CONTROL_EXPOSE_HEADERS).is_none());
        assert_eq!(canonical_header_key("a b"), "a b");
    }
}
