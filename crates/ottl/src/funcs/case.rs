//! `ConvertCase`'s snake and camel cases, as the Go `strcase` package otelcol uses computes
//! them: byte-wise over ASCII, word breaks at case changes and at ` _-.`.

/// `strcase.ToSnake`.
pub(crate) fn to_snake(s: &str) -> String {
    let s = s.trim();
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len() + 2);
    for (i, &orig) in b.iter().enumerate() {
        let is_cap = orig.is_ascii_uppercase();
        let is_low = orig.is_ascii_lowercase();
        let v = orig.to_ascii_lowercase();
        if let Some(&next) = b.get(i + 1) {
            let is_num = v.is_ascii_digit();
            let next_cap = next.is_ascii_uppercase();
            let next_low = next.is_ascii_lowercase();
            let next_num = next.is_ascii_digit();
            if (is_cap && (next_low || next_num))
                || (is_low && (next_cap || next_num))
                || (is_num && (next_cap || next_low))
            {
                if is_cap && next_low && i > 0 && b.get(i - 1).is_some_and(u8::is_ascii_uppercase) {
                    out.push(b'_');
                }
                out.push(v);
                if is_low || is_num || next_num {
                    out.push(b'_');
                }
                continue;
            }
        }
        if matches!(v, b' ' | b'_' | b'-' | b'.') {
            out.push(b'_');
        } else {
            out.push(v);
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

/// `strcase.ToCamel`: other bytes than letters and digits are dropped.
pub(crate) fn to_camel(s: &str) -> String {
    let s = s.trim();
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut cap_next = true;
    let mut prev_cap = false;
    for (i, &orig) in s.as_bytes().iter().enumerate() {
        let is_cap = orig.is_ascii_uppercase();
        let is_low = orig.is_ascii_lowercase();
        let mut v = orig;
        if cap_next {
            v = v.to_ascii_uppercase();
        } else if i == 0 || (prev_cap && is_cap) {
            v = v.to_ascii_lowercase();
        }
        prev_cap = is_cap;
        if is_cap || is_low {
            out.push(v);
            cap_next = false;
        } else if v.is_ascii_digit() {
            out.push(v);
            cap_next = true;
        } else {
            cap_next = matches!(v, b'_' | b' ' | b'-' | b'.');
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Cases from otelcol's func_convert_case_test.go and strcase's tests.
    #[test]
    fn snake() {
        assert_eq!(to_snake("SimpleTest"), "simple_test");
        assert_eq!(to_snake("simpleTest"), "simple_test");
        assert_eq!(to_snake("JSONData"), "json_data");
        assert_eq!(to_snake("http.method"), "http_method");
        assert_eq!(to_snake("AnyKind of_string"), "any_kind_of_string");
        assert_eq!(
            to_snake("numbers2And55with000"),
            "numbers_2_and_55_with_000"
        );
    }

    #[test]
    fn camel() {
        assert_eq!(to_camel("simple_test"), "SimpleTest");
        assert_eq!(to_camel("http.method"), "HttpMethod");
        assert_eq!(to_camel("AnyKind of_string"), "AnyKindOfString");
        assert_eq!(to_camel("ID"), "Id");
        assert_eq!(to_camel("many_many_words"), "ManyManyWords");
    }
}
