//! The `env` detector: `OTEL_RESOURCE_ATTRIBUTES` (or the older `OTEL_RESOURCE`), parsed as
//! otelcol parses it: `key=value` pairs separated by commas, keys and values of printable
//! or not ASCII up to 256 characters, spaces around them trimmed, values percent-decoded as
//! a URL query (`+` is a space), any other text an error.

use std::sync::OnceLock;

use regex::Regex;

pub const ENV_VAR: &str = "OTEL_RESOURCE_ATTRIBUTES";
pub const DEPRECATED_ENV_VAR: &str = "OTEL_RESOURCE";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("invalid resource format: {0:?}")]
    Format(String),
    #[error("invalid resource format, invalid text: {0:?}")]
    InvalidText(String),
    #[error("invalid resource format in attribute: {pair:?}, err: invalid URL escape {escape:?}")]
    Escape { pair: String, escape: String },
    #[error("invalid resource format in attribute: {0:?}: the decoded value is not UTF-8")]
    NotUtf8(String),
}

/// The attributes the environment describes, in order (a repeated key keeps its first place
/// and its last value).
pub fn detect(lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>, EnvError> {
    let current = lookup(ENV_VAR).unwrap_or_default();
    let mut text = trim_go_space(&current).to_owned();
    if text.is_empty() {
        text = trim_go_space(&lookup(DEPRECATED_ENV_VAR).unwrap_or_default()).to_owned();
    }
    if text.is_empty() {
        return Ok(Vec::new());
    }
    parse(&text)
}

/// Go's `strings.TrimSpace`, for the whitespace an environment variable would hold.
fn trim_go_space(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace())
}

/// The pattern of one pair; `None` only if it failed to compile, which it does not.
fn pair_regex() -> Option<&'static Regex> {
    static PAIR: OnceLock<Option<Regex>> = OnceLock::new();
    PAIR.get_or_init(|| {
        // Go's `\s` is ASCII whitespace; Rust's would also take Unicode spaces.
        let space = r"[\t\n\f\r ]*";
        Regex::new(&format!(
            r"{space}([[:ascii:]]{{1,256}}?){space}={space}([[:ascii:]]{{0,256}}?){space}(?:,|$)"
        ))
        .ok()
    })
    .as_ref()
}

pub fn parse(text: &str) -> Result<Vec<(String, String)>, EnvError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut previous_end = 0;
    let mut any = false;
    let Some(pairs) = pair_regex() else {
        return Err(EnvError::Format(text.to_owned()));
    };
    for caps in pairs.captures_iter(text) {
        let (Some(whole), Some(key), Some(value)) = (caps.get(0), caps.get(1), caps.get(2)) else {
            continue;
        };
        any = true;
        if whole.start() != previous_end {
            return Err(EnvError::InvalidText(
                text[previous_end..whole.start()].to_owned(),
            ));
        }
        let value = query_unescape(value.as_str()).map_err(|e| match e {
            Unescape::Escape(escape) => EnvError::Escape {
                pair: whole.as_str().to_owned(),
                escape,
            },
            Unescape::NotUtf8 => EnvError::NotUtf8(whole.as_str().to_owned()),
        })?;
        match out.iter_mut().find(|(k, _)| k == key.as_str()) {
            Some(existing) => existing.1 = value,
            None => out.push((key.as_str().to_owned(), value)),
        }
        previous_end = whole.end();
    }
    if !any {
        return Err(EnvError::Format(text.to_owned()));
    }
    if previous_end != text.len() {
        return Err(EnvError::InvalidText(text[previous_end..].to_owned()));
    }
    Ok(out)
}

enum Unescape {
    Escape(String),
    NotUtf8,
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte, a `%` not followed by two hex
/// digits an error naming the escape (up to three characters, as Go quotes it).
fn query_unescape(s: &str) -> Result<String, Unescape> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = |j: usize| bytes.get(j).and_then(|c| char::from(*c).to_digit(16));
                match (hex(i + 1), hex(i + 2)) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => {
                        let end = (i + 3).min(bytes.len());
                        return Err(Unescape::Escape(
                            String::from_utf8_lossy(&bytes[i..end]).into_owned(),
                        ));
                    }
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Unescape::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn parses_otelcols_examples() {
        assert_eq!(
            parse("key=value, key2=value2").expect("valid"),
            pairs(&[("key", "value"), ("key2", "value2")])
        );
        assert_eq!(
            parse(r#"  key  =  value  ,  key2  =  "value2"  "#.trim()).expect("valid"),
            pairs(&[("key", "value"), ("key2", "\"value2\"")])
        );
        assert_eq!(
            parse("key=value,key2=").expect("valid"),
            pairs(&[("key", "value"), ("key2", "")])
        );
        assert_eq!(
            parse("key=val%20ue+x,k%2C=a%2Cb").expect("valid"),
            pairs(&[("key", "val ue x"), ("k%2C", "a,b")])
        );
        assert_eq!(
            parse("a=1,a=2,b=3").expect("valid"),
            pairs(&[("a", "2"), ("b", "3")])
        );
    }

    #[test]
    fn refuses_what_otelcol_refuses() {
        assert_eq!(parse("foo"), Err(EnvError::Format("foo".into())));
        assert_eq!(
            parse("key=value,bad text"),
            Err(EnvError::InvalidText("bad text".into()))
        );
        assert_eq!(
            parse("k=a%zzb"),
            Err(EnvError::Escape {
                pair: "k=a%zzb".into(),
                escape: "%zz".into()
            })
        );
        assert_eq!(parse("k=%ff"), Err(EnvError::NotUtf8("k=%ff".into())));
        assert_eq!(parse("k=é"), Err(EnvError::Format("k=é".into())));
        assert_eq!(parse("a=1,k=é"), Err(EnvError::InvalidText("k=é".into())));
    }

    #[test]
    fn the_old_variable_is_read_when_the_new_one_is_empty() {
        let env = |name: &str| match name {
            ENV_VAR => Some("  ".to_owned()),
            DEPRECATED_ENV_VAR => Some("a=b".to_owned()),
            _ => None,
        };
        assert_eq!(detect(env).expect("valid"), pairs(&[("a", "b")]));
        assert_eq!(detect(|_| None).expect("nothing set"), Vec::new());
    }
}
