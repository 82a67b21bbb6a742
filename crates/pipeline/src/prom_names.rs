//! OpenTelemetry → Prometheus name translation, shared by the Prometheus exporters (scrape and
//! remote write) so both produce the same series: it follows the otelcol translator (contrib
//! `pkg/translator/prometheus`, now `prometheus/otlptranslator`). With
//! `add_metric_suffixes: true`, `traces.spanmetrics.duration` with unit `ms` becomes
//! `traces_spanmetrics_duration_milliseconds`, a monotonic counter gets `_total`, a gauge with
//! unit `1` gets `_ratio`.
//!
//! Only ASCII letters, digits, `_` and `:` survive, as in the current translator: the older
//! one let non-ASCII letters through, which produced names Prometheus refuses to parse.

use crate::metrics::MetricKind;

/// Valid inside a classic Prometheus metric name (besides `_`, which the name normalizer uses
/// as its token separator).
fn is_name_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b':'
}

fn is_label_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Splits on every run of characters that are not `[A-Za-z0-9:]` (so `_` splits too and runs
/// of underscores collapse, as the OTel → Prometheus spec asks).
fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_ascii() && is_name_token_char(c as u8)))
        .filter(|t| !t.is_empty())
}

/// `tokens` joined with `_`; used for namespaces and unit words.
pub fn clean_up(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for t in tokens(s) {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(t);
    }
    out
}

/// UCUM unit → Prometheus unit word; unknown units pass through (then get cleaned up).
fn main_unit(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// The denominator of `X/Y` units (`By/s` → `per_second`).
fn per_unit(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// The Prometheus unit words of an OTel unit: (`milliseconds`, ``) for `ms`,
/// (`bytes`, `second`) for `By/s`. Annotations (`{spans}`) give no word.
fn unit_words(unit: &str) -> (String, String) {
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m.trim(), p.trim()),
        None => (unit.trim(), ""),
    };
    let word = |u: &str, map: fn(&str) -> &str| {
        if u.is_empty() || u.contains(['{', '}']) {
            String::new()
        } else {
            clean_up(map(u))
        }
    };
    (word(main, main_unit), word(per, per_unit))
}

/// Names of one family, computed once per family rather than per series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyNames {
    /// The name samples are written under (`…_total` for counters with suffixes on).
    pub sample: String,
    /// The Prometheus unit (`milliseconds`, `bytes_per_second`) when the family name ends
    /// with it: OpenMetrics only allows a `# UNIT` that is a suffix of the family name.
    pub unit: String,
}

/// Translates a family name. `namespace` is already cleaned up (see [`clean_up`]). Returns
/// `None` when nothing valid is left (a name made only of punctuation, without namespace).
pub fn family_names(
    name: &str,
    unit: &str,
    kind: MetricKind,
    namespace: &str,
    add_suffixes: bool,
) -> Option<FamilyNames> {
    let mut parts: Vec<&str> = Vec::with_capacity(8);
    if !namespace.is_empty() {
        parts.push(namespace);
    }
    let (main, per) = unit_words(unit);
    if add_suffixes {
        let name_tokens: Vec<&str> = tokens(name).collect();
        // `total`/`ratio` are re-appended last, wherever the OTel name had them.
        let drop = match kind {
            MetricKind::Counter => Some("total"),
            MetricKind::Gauge if unit == "1" => Some("ratio"),
            _ => None,
        };
        parts.extend(name_tokens.iter().copied().filter(|t| Some(*t) != drop));
        if !main.is_empty() && !name_tokens.contains(&main.as_str()) {
            parts.push(&main);
        }
        if !per.is_empty() && !name_tokens.contains(&per.as_str()) {
            parts.push("per");
            parts.push(&per);
        }
        if let Some(suffix) = drop {
            parts.push(suffix);
        }
    } else {
        // Without suffixes otelcol only replaces forbidden runes (`_` is kept as is).
        let stripped = name
            .split(|c: char| !(c.is_ascii() && (is_name_token_char(c as u8) || c == '_')))
            .filter(|t| !t.is_empty());
        parts.extend(stripped);
    }
    let mut sample = parts.join("_");
    if sample.is_empty() || sample.bytes().all(|b| b == b'_') {
        return None;
    }
    if sample.as_bytes()[0].is_ascii_digit() {
        sample.insert(0, '_');
    }
    let unit_suffix = match (main.is_empty(), per.is_empty()) {
        (true, true) => String::new(),
        (false, true) => main,
        (true, false) => format!("per_{per}"),
        (false, false) => format!("{main}_per_{per}"),
    };
    let family = match kind {
        MetricKind::Counter => sample.strip_suffix("_total").unwrap_or(&sample),
        _ => &sample,
    };
    let unit = if !unit_suffix.is_empty()
        && family.len() > unit_suffix.len()
        && family.ends_with(&unit_suffix)
        && family.as_bytes()[family.len() - unit_suffix.len() - 1] == b'_'
    {
        unit_suffix
    } else {
        String::new()
    };
    Some(FamilyNames { sample, unit })
}

/// Whether `key` is already a valid, normalized label name (the fast path: spanmetrics keys
/// after the first translation are, OTel keys with dots are not).
fn label_is_normal(key: &[u8]) -> bool {
    match key {
        [] => false,
        [first, ..] if first.is_ascii_digit() => false,
        // `_x` becomes `key_x`; `__x` is allowed.
        [b'_', second, ..] if *second != b'_' => false,
        [b'_'] => false,
        _ => key.iter().all(|b| is_label_char(*b)),
    }
}

/// Appends the Prometheus form of an OTel attribute key: every invalid character becomes `_`,
/// a leading digit gets `key_`, a single leading `_` gets `key` (otelcol `NormalizeLabel`).
/// Returns false (and appends nothing) for an empty key, which has no valid form.
pub fn push_label_name(out: &mut Vec<u8>, key: &str) -> bool {
    let bytes = key.as_bytes();
    if label_is_normal(bytes) {
        out.extend_from_slice(bytes);
        return true;
    }
    if key.is_empty() {
        return false;
    }
    match bytes {
        [first, ..] if first.is_ascii_digit() => out.extend_from_slice(b"key_"),
        [b'_', b'_', ..] => {}
        [b'_', ..] => out.extend_from_slice(b"key"),
        _ => {}
    }
    for c in key.chars() {
        if c.is_ascii() && is_label_char(c as u8) {
            out.push(c as u8);
        } else {
            out.push(b'_');
        }
    }
    true
}

/// [`push_label_name`] into a new string (for config-time keys).
pub fn label_name(key: &str) -> Option<String> {
    let mut out = Vec::with_capacity(key.len() + 4);
    if !push_label_name(&mut out, key) {
        return None;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str, unit: &str, kind: MetricKind, ns: &str) -> String {
        family_names(n, unit, kind, ns, true)
            .map(|f| f.sample)
            .unwrap_or_default()
    }

    #[test]
    fn spanmetrics_names_match_otelcol() {
        let c = MetricKind::Counter;
        let h = MetricKind::Histogram;
        assert_eq!(
            name("traces.spanmetrics.calls", "1", c, ""),
            "traces_spanmetrics_calls_total"
        );
        assert_eq!(
            name("traces.spanmetrics.duration", "ms", h, ""),
            "traces_spanmetrics_duration_milliseconds"
        );
        assert_eq!(
            name("traces.spanmetrics.duration", "s", h, ""),
            "traces_spanmetrics_duration_seconds"
        );
        assert_eq!(name("calls", "1", c, "redline"), "redline_calls_total");
    }

    #[test]
    fn units_suffixes_and_special_cases() {
        let g = MetricKind::Gauge;
        let c = MetricKind::Counter;
        assert_eq!(name("memory.usage", "By", g, ""), "memory_usage_bytes");
        assert_eq!(name("net.io", "By/s", g, ""), "net_io_bytes_per_second");
        assert_eq!(name("cpu.utilization", "1", g, ""), "cpu_utilization_ratio");
        assert_eq!(name("queue.size", "{batches}", g, ""), "queue_size");
        // Unit already in the name is not repeated; `total` moves to the end.
        assert_eq!(
            name("request.duration.milliseconds", "ms", g, ""),
            "request_duration_milliseconds"
        );
        assert_eq!(name("total.requests", "1", c, ""), "requests_total");
        assert_eq!(name("http__requests", "", c, ""), "http_requests_total");
        assert_eq!(name("2xx.count", "", c, ""), "_2xx_count_total");
        assert_eq!(name("métrique", "", g, ""), "m_trique");
        assert!(family_names("...", "", g, "", true).is_none());
    }

    #[test]
    fn without_suffixes_only_forbidden_runes_change() {
        let f = family_names(
            "traces.spanmetrics.calls",
            "1",
            MetricKind::Counter,
            "",
            false,
        );
        assert_eq!(
            f.map(|f| f.sample).as_deref(),
            Some("traces_spanmetrics_calls")
        );
        let f = family_names("a__b.c", "ms", MetricKind::Histogram, "ns", false);
        assert_eq!(f.map(|f| f.sample).as_deref(), Some("ns_a__b_c"));
    }

    #[test]
    fn unit_only_when_it_is_a_suffix() {
        let f = family_names("d", "ms", MetricKind::Histogram, "", true);
        assert_eq!(f.map(|f| f.unit).as_deref(), Some("milliseconds"));
        let f = family_names("io", "By", MetricKind::Counter, "", true);
        assert_eq!(f.map(|f| f.unit).as_deref(), Some("bytes"));
        let f = family_names("calls", "1", MetricKind::Counter, "", true);
        assert_eq!(f.map(|f| f.unit).as_deref(), Some(""));
        let f = family_names("d", "ms", MetricKind::Histogram, "", false);
        assert_eq!(f.map(|f| f.unit).as_deref(), Some(""));
    }

    #[test]
    fn label_names_follow_normalize_label() {
        for (raw, want) in [
            ("service.name", Some("service_name")),
            ("span_kind", Some("span_kind")),
            ("cdn.cache.hit", Some("cdn_cache_hit")),
            ("otel.metric.overflow", Some("otel_metric_overflow")),
            ("9lives", Some("key_9lives")),
            ("_private", Some("key_private")),
            ("__reserved", Some("__reserved")),
            ("ключ", Some("____")),
            ("a-b c", Some("a_b_c")),
            ("", None),
        ] {
            assert_eq!(label_name(raw).as_deref(), want, "{raw:?}");
        }
    }
}
