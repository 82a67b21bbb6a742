//! A parser for the Prometheus text exposition (0.0.4, and OpenMetrics 1.0 samples with
//! exemplars, which are skipped). Label values are unescaped (`\\`, `\"`, `\n`), so a span
//! name with quotes compares equal to the one loadgen generated.

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {what}: {text}")]
pub struct ExpoError {
    pub line: usize,
    pub what: &'static str,
    pub text: String,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of an exposition, in order. Comments, `# EOF` and blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<Sample>, ExpoError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let err = |what| ExpoError {
            line: i + 1,
            what,
            text: line.chars().take(200).collect(),
        };
        out.push(parse_line(l).map_err(err)?);
    }
    Ok(out)
}

fn parse_line(l: &str) -> Result<Sample, &'static str> {
    let b = l.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
        i += 1;
    }
    if i == 0 || b[0].is_ascii_digit() {
        return Err("bad metric name");
    }
    let name = l[..i].to_owned();
    let mut labels = Vec::new();
    let mut rest = &l[i..];
    if let Some(r) = rest.strip_prefix('{') {
        rest = parse_labels(r, &mut labels)?;
    }
    let rest = rest.trim_start();
    // The value is the first field; a timestamp and an OpenMetrics exemplar may follow.
    let value_str = rest
        .split_ascii_whitespace()
        .next()
        .ok_or("missing value")?;
    let value = parse_value(value_str).ok_or("bad value")?;
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Parses `k="v",...}` and returns what follows the closing brace.
fn parse_labels<'a>(
    mut s: &'a str,
    out: &mut Vec<(String, String)>,
) -> Result<&'a str, &'static str> {
    loop {
        s = s.trim_start();
        if let Some(r) = s.strip_prefix('}') {
            return Ok(r);
        }
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("unterminated label set")?;
        if end == 0 {
            return Err("bad label name");
        }
        let key = s[..end].to_owned();
        s = s[end..].trim_start();
        s = s.strip_prefix('=').ok_or("expected '='")?.trim_start();
        s = s.strip_prefix('"').ok_or("expected '\"'")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err("unterminated label value"),
                Some((at, '"')) => break at,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    // Prometheus keeps an unknown escape as written.
                    Some((_, c)) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => return Err("unterminated escape"),
                },
                Some((_, c)) => value.push(c),
            }
        };
        out.push((key, value));
        s = s[close + 1..].trim_start();
        if let Some(r) = s.strip_prefix(',') {
            s = r;
        } else if !s.starts_with('}') {
            return Err("expected ',' or '}'");
        }
    }
}

/// A sample value or `le` bound (`+Inf`, `NaN`, Go float syntax).
pub fn parse_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => v.parse().ok(),
    }
}

/// Prometheus label value escaping (for printing mismatches the way Prometheus shows them).
pub fn escape(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_labels() {
        let text = "# HELP x_total help\n# TYPE x_total counter\nx_total 3\n\
                    y{a=\"1\",b=\"two\"} 4.5 1700000000000\n\n";
        let s = parse(text).expect("parses");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "x_total");
        assert!(s[0].labels.is_empty());
        assert_eq!(s[0].value, 3.0);
        assert_eq!(s[1].label("b"), Some("two"));
        assert_eq!(s[1].value, 4.5);
    }

    #[test]
    fn escaping() {
        let line = r#"m{span_name="SELECT \"sku\" FROM t",re="^/v\\d+/",nl="a\nb",odd="x\qy"} 1"#;
        let s = parse(line).expect("parses");
        assert_eq!(s[0].label("span_name"), Some("SELECT \"sku\" FROM t"));
        assert_eq!(s[0].label("re"), Some("^/v\\d+/"));
        assert_eq!(s[0].label("nl"), Some("a\nb"));
        assert_eq!(s[0].label("odd"), Some("x\\qy"));
        for v in ["SELECT \"sku\" FROM t", "^/v\\d+/", "a\nb", "plain"] {
            let line = format!("m{{l=\"{}\"}} 2", escape(v));
            assert_eq!(parse(&line).expect("round trip")[0].label("l"), Some(v));
        }
    }

    #[test]
    fn tricky_values_and_separators() {
        let text =
            "m{a=\"} # {\",b=\"}\",} 7\nm_bucket{le=\"+Inf\"} 12 # {trace_id=\"ab\"} 3.5 1.7e9\n\
                    m{ a = \"x\" } +Inf\nm NaN\nm -Inf\nm 1e+06\n# EOF\n";
        let s = parse(text).expect("parses");
        assert_eq!(s[0].label("a"), Some("} # {"));
        assert_eq!(s[0].label("b"), Some("}"));
        assert_eq!(s[0].value, 7.0);
        assert_eq!(s[1].label("le"), Some("+Inf"));
        assert_eq!(s[1].value, 12.0);
        assert_eq!(s[2].value, f64::INFINITY);
        assert!(s[3].value.is_nan());
        assert_eq!(s[4].value, f64::NEG_INFINITY);
        assert_eq!(s[5].value, 1e6);
    }

    #[test]
    fn errors_name_the_line() {
        for bad in [
            "m{a=\"x} 1",
            "m{a=x} 1",
            "m{a=\"x\" b=\"y\"} 1",
            "m",
            "m abc",
            "{a=\"1\"} 1",
            "m{=\"1\"} 1",
        ] {
            let e = parse(&format!("ok 1\n{bad}\n")).expect_err(bad);
            assert_eq!(e.line, 2, "{bad}: {e}");
        }
    }
}
