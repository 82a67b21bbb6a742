//! W3C `tracestate` parsing as OpenTelemetry Go's `trace.ParseTraceState` does it, for
//! `trace_state["key"]` and for the tail sampler's `trace_state` policy.

const MAX_MEMBERS: usize = 32;

/// The members in order, or `None` when the header is invalid (Go then reads nil and skips
/// writes).
pub fn parse(raw: &str) -> Option<Vec<(&str, &str)>> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    for member in raw.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !valid_key(key) || !valid_value(value) {
            return None;
        }
        if members.iter().any(|(k, _)| *k == key) {
            return None;
        }
        members.push((key, value));
        if members.len() > MAX_MEMBERS {
            return None;
        }
    }
    Some(members)
}

/// Go's `TraceState.Insert`: the member moves to the front; `None` when key or value is
/// invalid or the list would grow past 32 members.
pub(crate) fn insert(raw: &str, key: &str, value: &str) -> Option<String> {
    let members = parse(raw)?;
    if !valid_key(key) || !valid_value(value) {
        return None;
    }
    let rest: Vec<(&str, &str)> = members.into_iter().filter(|(k, _)| *k != key).collect();
    if rest.len() + 1 > MAX_MEMBERS {
        return None;
    }
    let mut out = format!("{key}={value}");
    for (k, v) in rest {
        out.push(',');
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    Some(out)
}

fn key_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/')
}

fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    match key.split_once('@') {
        None => {
            !b.is_empty()
                && b.len() <= 256
                && b.first().is_some_and(u8::is_ascii_lowercase)
                && b.iter().all(|c| key_char(*c))
        }
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            !t.is_empty()
                && t.len() <= 241
                && t.first()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && t.iter().all(|c| key_char(*c))
                && !s.is_empty()
                && s.len() <= 14
                && s.first().is_some_and(u8::is_ascii_lowercase)
                && s.iter().all(|c| key_char(*c))
        }
    }
}

fn valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    let printable = |c: &u8| (0x20..=0x7e).contains(c) && *c != b',' && *c != b'=';
    !b.is_empty()
        && b.len() <= 256
        && b.iter().all(printable)
        && b.last().is_some_and(|c| *c != b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_inserts() {
        assert_eq!(parse("a=1, b=2"), Some(vec![("a", "1"), ("b", "2")]));
        assert_eq!(parse(""), Some(vec![]));
        assert_eq!(parse("A=1"), None);
        assert_eq!(parse("a=1,a=2"), None);
        assert_eq!(parse("t@s=1"), Some(vec![("t@s", "1")]));
        assert_eq!(insert("a=1,b=2", "b", "3").as_deref(), Some("b=3,a=1"));
        assert_eq!(insert("", "k", "v").as_deref(), Some("k=v"));
        assert_eq!(insert("a=1", "K", "v"), None);
    }
}
