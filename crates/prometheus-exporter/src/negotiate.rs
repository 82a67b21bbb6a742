//! Content negotiation as promhttp does it (`expfmt.NegotiateIncludingOpenMetrics`, or
//! `expfmt.Negotiate` with OpenMetrics off, over goautoneg), in the prometheus/common version
//! otelcol v0.161.0 builds with: the clauses of `Accept` sorted as goautoneg sorts them, then
//! for each clause the first format the server offers that it matches; nothing matching gets
//! the text format. The chosen `escaping` is named in the `Content-Type`.

use crate::render::Format;

/// What a scrape is answered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// The text format 0.0.4 or OpenMetrics.
    Text(Format),
    /// Varint-delimited `io.prometheus.client.MetricFamily` messages.
    Protobuf,
}

/// The encoding of a response and its exact `Content-Type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub encoding: Encoding,
    pub content_type: String,
}

impl Negotiated {
    /// The text format, when the answer is one.
    pub fn format(&self) -> Option<Format> {
        match self.encoding {
            Encoding::Text(f) => Some(f),
            Encoding::Protobuf => None,
        }
    }
}

/// One format the server offers: its media type, the parameters a clause must match
/// (`charset` never has to), and its `Content-Type` before `; escaping=…`.
struct Offer {
    kind: &'static str,
    sub: &'static str,
    params: &'static [(&'static str, &'static str)],
    content_type: &'static str,
    encoding: Encoding,
}

const OM_1_0_0: Offer = Offer {
    kind: "application",
    sub: "openmetrics-text",
    params: &[("version", "1.0.0")],
    content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
    encoding: Encoding::Text(Format::OpenMetrics),
};
const OM_0_0_1: Offer = Offer {
    kind: "application",
    sub: "openmetrics-text",
    params: &[("version", "0.0.1")],
    content_type: "application/openmetrics-text; version=0.0.1; charset=utf-8",
    encoding: Encoding::Text(Format::OpenMetrics),
};
const PROTO_DELIM: Offer = Offer {
    kind: "application",
    sub: "vnd.google.protobuf",
    params: &[
        ("proto", "io.prometheus.client.MetricFamily"),
        ("encoding", "delimited"),
    ],
    content_type:
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
    encoding: Encoding::Protobuf,
};
const TEXT: Offer = Offer {
    kind: "text",
    sub: "plain",
    params: &[("version", "0.0.4")],
    content_type: "text/plain; version=0.0.4; charset=utf-8",
    encoding: Encoding::Text(Format::Text),
};

/// promhttp's offers in its order of preference. The protobuf text encodings it also offers
/// (`encoding=text`, `compact-text`) are not served: a clause asking only for them falls
/// through to the next one.
const WITH_OPENMETRICS: &[&Offer] = &[&OM_1_0_0, &OM_0_0_1, &PROTO_DELIM, &TEXT];
const WITHOUT_OPENMETRICS: &[&Offer] = &[&PROTO_DELIM, &TEXT];

/// One clause of an `Accept` header, as goautoneg parses it: type and subtype kept as
/// written (the match is case-sensitive), only spaces trimmed, parameter values unquoted
/// never.
struct Clause<'a> {
    kind: &'a str,
    sub: &'a str,
    q: f64,
    params: Vec<(&'a str, &'a str)>,
}

impl Clause<'_> {
    fn param(&self, key: &str) -> Option<&str> {
        // Go keeps parameters in a map: a repeated key has its last value.
        self.params
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

fn trim_spaces(s: &str) -> &str {
    s.trim_matches(' ')
}

fn parse_clause(part: &str) -> Option<Clause<'_>> {
    let part = trim_spaces(part);
    let (media, params) = part.split_once(';').unwrap_or((part, ""));
    let (kind, sub) = match media.split_once('/') {
        None if trim_spaces(media) == "*" => ("*", "*"),
        None => return None,
        Some((_, sub)) if sub.contains('/') => return None,
        Some((kind, sub)) => (trim_spaces(kind), trim_spaces(sub)),
    };
    let mut c = Clause {
        kind,
        sub,
        q: 1.0,
        params: Vec::new(),
    };
    for p in params.split(';').filter(|p| !p.is_empty()) {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if v.contains('=') {
            continue;
        }
        let k = trim_spaces(k);
        if k == "q" {
            // strconv.ParseFloat(v, 32): no trimming, and 0 when it does not parse.
            c.q = v.parse::<f32>().map_or(0.0, f64::from);
        } else {
            c.params.push((k, trim_spaces(v)));
        }
    }
    Some(c)
}

/// goautoneg's order: its `Less` is not a strict order, so the exact result depends on the
/// algorithm; Go sorts slices this short (up to 12) by insertion sort, which this repeats.
fn sort_clauses(clauses: &mut [Clause<'_>]) {
    let less = |a: &Clause<'_>, b: &Clause<'_>| {
        a.q > b.q || (a.kind != "*" && b.kind == "*") || (a.sub != "*" && b.sub == "*")
    };
    for i in 1..clauses.len() {
        let mut j = i;
        while j > 0 && less(&clauses[j], &clauses[j - 1]) {
            clauses.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// expfmt's `matchFormat`.
fn matches(c: &Clause<'_>, offer: &Offer) -> bool {
    if (c.kind != "*" && c.kind != offer.kind) || (c.sub != "*" && c.sub != offer.sub) {
        return false;
    }
    let version = match c.param("version") {
        Some(v) if !v.is_empty() => v,
        _ if c.kind == "application" && c.sub == "openmetrics-text" => "0.0.1",
        _ if c.kind == "text" && c.sub == "plain" => "0.0.4",
        _ => "",
    };
    offer.params.iter().all(|&(k, want)| {
        let got = if k == "version" {
            version
        } else {
            c.param(k).unwrap_or("")
        };
        got == want
    })
}

/// Picks the response encoding for an `Accept` header. With `enable_open_metrics` false,
/// OpenMetrics is not offered, as in otelcol.
pub fn negotiate(accept: Option<&str>, enable_open_metrics: bool) -> Negotiated {
    let offers = if enable_open_metrics {
        WITH_OPENMETRICS
    } else {
        WITHOUT_OPENMETRICS
    };
    let mut clauses: Vec<Clause<'_>> = accept
        .unwrap_or("")
        .split(',')
        .filter(|p| !p.is_empty())
        .filter_map(parse_clause)
        .collect();
    sort_clauses(&mut clauses);
    let mut escaping = "underscores";
    for c in &clauses {
        if let Some(e @ ("allow-utf-8" | "underscores" | "dots" | "values")) = c.param("escaping") {
            escaping = e;
        }
        if let Some(offer) = offers.iter().find(|o| matches(c, o)) {
            return answer(offer, escaping);
        }
    }
    answer(&TEXT, escaping)
}

fn answer(offer: &Offer, escaping: &str) -> Negotiated {
    // Names are always escaped to underscores when built, so every scheme leaves them as
    // they are: only the Content-Type tells the scheme.
    Negotiated {
        encoding: offer.encoding,
        content_type: format!("{}; escaping={escaping}", offer.content_type),
    }
}

fn parse_q(v: &str) -> f32 {
    v.trim().parse::<f32>().map_or(0.0, |q| q.clamp(0.0, 1.0))
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
    /// Prometheus 3's default `scrape_protocols`.
    const PROMETHEUS_3: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.7,application/openmetrics-text;version=0.0.1;q=0.6,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.3";
    /// Prometheus 3 with native histograms (protobuf first).
    const PROMETHEUS_3_PROTO: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

    const TEXT_CT: &str = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores";
    const PROTO_CT: &str = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=underscores";

    fn fmt(accept: Option<&str>, om: bool) -> (Encoding, String) {
        let n = negotiate(accept, om);
        (n.encoding, n.content_type)
    }

    fn ct(accept: &str, om: bool) -> String {
        negotiate(Some(accept), om).content_type
    }

    #[test]
    fn prometheus_gets_openmetrics_when_enabled() {
        assert_eq!(
            fmt(Some(PROMETHEUS_2_42), true),
            (
                Encoding::Text(Format::OpenMetrics),
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
                    .to_owned()
            )
        );
        assert_eq!(
            fmt(Some(PROMETHEUS_2_42), false),
            (Encoding::Text(Format::Text), TEXT_CT.to_owned())
        );
        assert_eq!(
            ct(PROMETHEUS_3, true),
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
        );
        // Without OpenMetrics, text/plain;version=1.0.0 is not offered: 0.0.4 is, with the
        // escaping of the last clause read that named one.
        assert_eq!(
            ct(PROMETHEUS_3, false),
            "text/plain; version=0.0.4; charset=utf-8; escaping=allow-utf-8"
        );
    }

    #[test]
    fn protobuf_when_asked_first() {
        assert_eq!(
            fmt(Some(PROMETHEUS_3_PROTO), true),
            (Encoding::Protobuf, PROTO_CT.to_owned())
        );
        assert_eq!(fmt(Some(PROMETHEUS_3_PROTO), false).0, Encoding::Protobuf);
        // Preferred by q even when listed later.
        let a = "text/plain;version=0.0.4;q=0.3,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.9";
        assert_eq!(fmt(Some(a), true).0, Encoding::Protobuf);
        // The parameters must all be there.
        let a = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily";
        assert_eq!(fmt(Some(a), true).0, Encoding::Text(Format::Text));
        // Protobuf text encodings are not served.
        let a = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text,application/openmetrics-text;version=1.0.0;q=0.1";
        assert_eq!(fmt(Some(a), true).0, Encoding::Text(Format::OpenMetrics));
    }

    #[test]
    fn q_values_order_the_choice() {
        let a = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.9";
        assert_eq!(fmt(Some(a), true).0, Encoding::Text(Format::Text));
        let a =
            "text/plain;version=0.0.4;q=0.4, application/openmetrics-text; version=1.0.0; q=0.8";
        assert_eq!(fmt(Some(a), true).0, Encoding::Text(Format::OpenMetrics));
        // goautoneg does not treat q=0 as refusal: the clause still matches.
        let a = "application/openmetrics-text;version=1.0.0;q=0, text/plain;q=0.1";
        assert_eq!(fmt(Some(a), true).0, Encoding::Text(Format::Text));
        let a = "application/openmetrics-text;version=1.0.0;q=0";
        assert_eq!(fmt(Some(a), true).0, Encoding::Text(Format::OpenMetrics));
        // Without a version, OpenMetrics means 0.0.1.
        assert_eq!(
            ct("application/openmetrics-text", true),
            "application/openmetrics-text; version=0.0.1; charset=utf-8; escaping=underscores"
        );
        // Unknown versions are skipped.
        let a = "application/openmetrics-text;version=2.0.0,text/plain;q=0.2";
        assert_eq!(fmt(Some(a), true).0, Encoding::Text(Format::Text));
        // An unparsable q is 0.
        let a = "application/openmetrics-text;version=1.0.0;q=x,text/plain;q=0.2";
        assert_eq!(fmt(Some(a), true).0, Encoding::Text(Format::Text));
    }

    #[test]
    fn defaults_to_text() {
        for a in [
            None,
            Some("*/*"),
            Some("garbage"),
            Some(""),
            Some("application/json"),
        ] {
            assert_eq!(
                fmt(a, true),
                (Encoding::Text(Format::Text), TEXT_CT.to_owned())
            );
        }
        // Media types are matched case-sensitively, as in Go.
        assert_eq!(
            fmt(Some("Application/OpenMetrics-Text;version=1.0.0"), true).0,
            Encoding::Text(Format::Text)
        );
        // The escaping of the clauses read so far names the fallback's scheme too.
        assert_eq!(
            ct("application/json;escaping=values", true),
            "text/plain; version=0.0.4; charset=utf-8; escaping=values"
        );
        assert_eq!(ct("application/json;escaping=bogus", true), TEXT_CT);
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
