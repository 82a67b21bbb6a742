//! Percent-encoding as Go's `net/url` reads it, for the values users put in URLs: header
//! values in `OTEL_EXPORTER_OTLP_HEADERS`-style lists, query parameters of the extensions'
//! HTTP pages.

/// `%XX` escapes decoded, and `+` as a space when `plus_is_space` (query strings); `None`
/// when an escape is cut short or not hex, as Go's `url.QueryUnescape` refuses it.
pub fn decode(s: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = hex(*b.get(i + 1)?)?;
                let lo = hex(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// [`decode`] without `+` rules, to text; `None` also when the bytes are not UTF-8.
pub fn decode_utf8(s: &str) -> Option<String> {
    String::from_utf8(decode(s, false)?).ok()
}

/// The first value of `key` in a query string, as Go's `url.ParseQuery` and `Values.Get`
/// find it: pairs split on `&`, a pair with `;` or a malformed escape skipped, `+` a space,
/// a key without `=` an empty value.
pub fn query_value(query: &str, key: &str) -> Option<Vec<u8>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k, true)?, decode(v, true)?);
            (k == key.as_bytes()).then_some(v)
        })
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_and_bad_ones_are_refused() {
        assert_eq!(decode("he%61p", false).as_deref(), Some(&b"heap"[..]));
        assert_eq!(decode("%ff", false), Some(vec![0xff]));
        assert_eq!(decode("a+b", false).as_deref(), Some(&b"a+b"[..]));
        assert_eq!(decode("a+b", true).as_deref(), Some(&b"a b"[..]));
        for bad in ["%", "%4", "%zz", "a%g1"] {
            assert_eq!(decode(bad, false), None, "{bad}");
        }
        assert_eq!(decode_utf8("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(decode_utf8("%ff"), None);
    }

    #[test]
    fn query_values_are_found_as_go_finds_them() {
        assert_eq!(query_value("a=x+y%21", "a"), Some(b"x y!".to_vec()));
        assert_eq!(query_value("a", "a"), Some(Vec::new()));
        assert_eq!(query_value("b=1", "a"), None);
        assert_eq!(query_value("a=%ff", "a"), Some(vec![0xff]));
        assert_eq!(query_value("x=1&a=2&a=3", "a"), Some(b"2".to_vec()));
        assert_eq!(query_value("a=4;x=1&a=5", "a"), Some(b"5".to_vec()));
        assert_eq!(query_value("a=%4&a=6", "a"), Some(b"6".to_vec()));
        assert_eq!(query_value("%61=7", "a"), Some(b"7".to_vec()));
        assert_eq!(query_value("&&a=8&", "a"), Some(b"8".to_vec()));
    }
}
