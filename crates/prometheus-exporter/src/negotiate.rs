//! Content negotiation as the Go client does it (`expfmt.NegotiateIncludingOpenMetrics` over
//! goautoneg): media ranges ordered by q-value, then by specificity; the first one we can
//! serve wins; anything else (`*/*`, no header, protobuf only) gets the text format.

use crate::render::{Format, OPENMETRICS_001_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE};

/// The format of a response and its exact `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub format: Format,
    pub content_type: &'static str,
}

const TEXT: Negotiated = Negotiated {
    format: Format::Text,
    content_type: crate::render::TEXT_CONTENT_TYPE,
};

struct Range<'a> {
    kind: &'a str,
    sub: &'a str,
    version: Option<&'a str>,
    q: f32,
    /// Position in the header: ties keep the client's order.
    pos: usize,
}

fn parse_q(v: &str) -> f32 {
    // goautoneg takes an unparsable q as 0; a q outside [0, 1] is clamped.
    v.trim().parse::<f32>().map_or(0.0, |q| q.clamp(0.0, 1.0))
}

fn parse_ranges(accept: &str) -> Vec<Range<'_>> {
    let mut ranges: Vec<Range<'_>> = accept
        .split(',')
        .enumerate()
        .filter_map(|(pos, part)| {
            let mut params = part.split(';');
            let media = params.next()?.trim();
            let (kind, sub) = media.split_once('/')?;
            let mut r = Range {
                kind: kind.trim(),
                sub: sub.trim(),
                version: None,
                q: 1.0,
                pos,
            };
            for p in params {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                match k.trim() {
                    k if k.eq_ignore_ascii_case("q") => r.q = parse_q(v),
                    k if k.eq_ignore_ascii_case("version") => r.version = Some(v),
                    _ => {}
                }
            }
            Some(r)
        })
        .collect();
    // Highest q first; among equal q, concrete types before wildcards; then header order.
    ranges.sort_by(|a, b| {
        b.q.total_cmp(&a.q)
            .then((a.kind == "*").cmp(&(b.kind == "*")))
            .then((a.sub == "*").cmp(&(b.sub == "*")))
            .then(a.pos.cmp(&b.pos))
    });
    ranges
}

/// Picks the response format for an `Accept` header. With `enable_open_metrics` false the
/// answer is always the text format, as otelcol does.
pub fn negotiate(accept: Option<&str>, enable_open_metrics: bool) -> Negotiated {
    let Some(accept) = accept else {
        return TEXT;
    };
    for r in parse_ranges(accept) {
        // q=0 means "not acceptable" (RFC 9110).
        if r.q <= 0.0 {
            continue;
        }
        let version = r.version.unwrap_or("");
        if r.kind.eq_ignore_ascii_case("text")
            && r.sub.eq_ignore_ascii_case("plain")
            && (version.is_empty() || version == "0.0.4")
        {
            return TEXT;
        }
        if enable_open_metrics
            && r.kind.eq_ignore_ascii_case("application")
            && r.sub.eq_ignore_ascii_case("openmetrics-text")
        {
            match version {
                "" | "1.0.0" => {
                    return Negotiated {
                        format: Format::OpenMetrics,
                        content_type: OPENMETRICS_CONTENT_TYPE,
                    }
                }
                "0.0.1" => {
                    return Negotiated {
                        format: Format::OpenMetrics,
                        content_type: OPENMETRICS_001_CONTENT_TYPE,
                    }
                }
                _ => {}
            }
        }
    }
    TEXT
}

/// Whether an `Accept-Encoding` header allows gzip (`gzip` or `*` with q > 0, and no
/// explicit `gzip;q=0`).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(h) = accept_encoding else {
        return false;
    };
    let mut star = false;
    for part in h.split(',') {
        let mut params = part.split(';');
        let coding = params.next().unwrap_or("").trim();
        let q = params
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, v)| parse_q(v));
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return q > 0.0;
        }
        if coding == "*" {
            star = q > 0.0;
        }
    }
    star
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMETHEUS_2_42: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    fn fmt(accept: Option<&str>, om: bool) -> (Format, &'static str) {
        let n = negotiate(accept, om);
        (n.format, n.content_type)
    }

    #[test]
    fn prometheus_gets_openmetrics_when_enabled() {
        assert_eq!(
            fmt(Some(PROMETHEUS_2_42), true),
            (
                Format::OpenMetrics,
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            )
        );
        assert_eq!(
            fmt(Some(PROMETHEUS_2_42), false),
            (Format::Text, "text/plain; version=0.0.4; charset=utf-8")
        );
    }

    #[test]
    fn q_values_order_the_choice() {
        // Text preferred by q even though listed last.
        let a = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.9";
        assert_eq!(fmt(Some(a), true).0, Format::Text);
        // OpenMetrics preferred by q.
        let a =
            "text/plain;version=0.0.4;q=0.4, application/openmetrics-text; version=1.0.0; q=0.8";
        assert_eq!(fmt(Some(a), true).0, Format::OpenMetrics);
        // q=0 is refused.
        let a = "application/openmetrics-text;q=0, text/plain;q=0.1";
        assert_eq!(fmt(Some(a), true).0, Format::Text);
        // Older OpenMetrics version keeps its content type.
        let a = "application/openmetrics-text;version=0.0.1";
        assert_eq!(
            fmt(Some(a), true),
            (
                Format::OpenMetrics,
                "application/openmetrics-text; version=0.0.1; charset=utf-8"
            )
        );
        // Unknown versions are skipped.
        let a = "application/openmetrics-text;version=2.0.0,text/plain;q=0.2";
        assert_eq!(fmt(Some(a), true).0, Format::Text);
        // Prometheus 3 with protobuf first: protobuf is skipped, OpenMetrics chosen.
        let a = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,application/openmetrics-text;version=1.0.0;q=0.6,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(fmt(Some(a), true).0, Format::OpenMetrics);
    }

    #[test]
    fn defaults_to_text() {
        assert_eq!(fmt(None, true).0, Format::Text);
        assert_eq!(fmt(Some("*/*"), true).0, Format::Text);
        assert_eq!(fmt(Some("garbage"), true).0, Format::Text);
        assert_eq!(fmt(Some(""), true).0, Format::Text);
        assert_eq!(fmt(Some("application/json"), true).0, Format::Text);
    }

    #[test]
    fn gzip_acceptance() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, gzip;q=0.5")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }
}
