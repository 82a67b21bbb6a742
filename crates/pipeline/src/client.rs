//! What a receiver keeps of the client that sent a request: otelcol's `client.Info.Metadata`,
//! the request's headers, kept when the receiver's `include_metadata` is set.
//!
//! Components downstream read it by key (`headers_setter`'s `from_context`, `attributes`'
//! `from_context: metadata.<key>`) and the `batch` processor narrows it to its
//! `metadata_keys`. Keys are compared without regard to case, as otelcol lowercases them
//! (HTTP/2 header names are lowercase already).

use std::sync::Arc;

/// A request's client metadata: each key (lowercase) with its values in arrival order.
/// Cheap to clone; compared by content, so two batches of the same tenant are equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientMetadata(Arc<[Entry]>);

/// One key and its values.
type Entry = (Box<str>, Box<[Box<str>]>);

/// Why stored metadata could not be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("client metadata: {0}")]
pub struct DecodeError(&'static str);

impl ClientMetadata {
    /// Metadata from `(name, value)` pairs (a request's headers, say): names are lowercased,
    /// the values of a repeated name kept together in the order they came.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut pairs: Vec<(String, &str)> = pairs
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        // Stable: a repeated name keeps its values in arrival order. Sorting then grouping
        // keeps a request of many headers linear-logarithmic, not quadratic.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut entries: Vec<(Box<str>, Vec<Box<str>>)> = Vec::new();
        for (name, value) in pairs {
            match entries.last_mut() {
                Some((last, values)) if **last == *name => values.push(value.into()),
                _ => entries.push((name.into(), vec![value.into()])),
            }
        }
        Self::from_entries(entries)
    }

    fn from_entries(mut entries: Vec<(Box<str>, Vec<Box<str>>)>) -> Self {
        // Sorted by key, so equal metadata compares and hashes equal whatever the header order.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Self(
            entries
                .into_iter()
                .map(|(k, v)| (k, v.into_boxed_slice()))
                .collect(),
        )
    }

    /// A request's HTTP headers (or gRPC metadata): every value that is text. `host`, when
    /// the headers have none, is the request's authority, as otelcol adds it.
    pub fn from_headers(headers: &http::HeaderMap, authority: Option<&str>) -> Self {
        let pairs = headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        let host = authority
            .filter(|_| !headers.contains_key(http::header::HOST))
            .map(|a| ("host", a));
        Self::from_pairs(pairs.chain(host))
    }

    /// The values of `key` (any case), none when it is absent.
    pub fn get(&self, key: &str) -> &[Box<str>] {
        self.0
            .binary_search_by(|(k, _)| cmp_ignoring_case(k, key))
            .map_or(&[], |i| &self.0[i].1)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Key and values, keys in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Box<str>])> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Only `keys` (each lowercase): what otelcol's `batch` processor with `metadata_keys`
    /// hands on. A key without values is left out, which reads the same as an empty list.
    pub fn narrowed_to(&self, keys: &[String]) -> Self {
        let entries = keys
            .iter()
            .filter_map(|k| {
                let values = self.get(k);
                (!values.is_empty()).then(|| (k.as_str().into(), values.to_vec()))
            })
            .collect();
        Self::from_entries(entries)
    }

    /// The stored form: for each key, its length, bytes, value count and values, each
    /// length a little-endian u32.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_len(out, self.0.len());
        for (key, values) in self.0.iter() {
            put_str(out, key);
            put_len(out, values.len());
            for value in values.iter() {
                put_str(out, value);
            }
        }
    }

    /// Reads what [`encode`](Self::encode) wrote, all of `bytes`.
    pub fn decode(mut bytes: &[u8]) -> Result<Self, DecodeError> {
        let keys = take_len(&mut bytes)?;
        let mut entries = Vec::new();
        for _ in 0..keys {
            let key = take_str(&mut bytes)?;
            let count = take_len(&mut bytes)?;
            let mut values = Vec::new();
            for _ in 0..count {
                values.push(take_str(&mut bytes)?);
            }
            entries.push((key, values));
        }
        if !bytes.is_empty() {
            return Err(DecodeError("bytes left after the last key"));
        }
        Ok(Self::from_entries(entries))
    }
}

fn cmp_ignoring_case(stored: &str, key: &str) -> std::cmp::Ordering {
    let key = key.bytes().map(|b| b.to_ascii_lowercase());
    stored.bytes().cmp(key)
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn take_len(bytes: &mut &[u8]) -> Result<usize, DecodeError> {
    let (head, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or(DecodeError("cut inside a length"))?;
    *bytes = rest;
    let len = u32::from_le_bytes(*head) as usize;
    // Every counted thing takes at least 4 bytes, so a length beyond what is left is damage,
    // caught before anything is allocated for it.
    if len > bytes.len() {
        return Err(DecodeError("a length beyond the record"));
    }
    Ok(len)
}

fn take_str(bytes: &mut &[u8]) -> Result<Box<str>, DecodeError> {
    let len = take_len(bytes)?;
    let (s, rest) = bytes.split_at(len);
    *bytes = rest;
    std::str::from_utf8(s)
        .map(Into::into)
        .map_err(|_| DecodeError("a key or value that is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(md: &ClientMetadata, key: &str) -> Vec<String> {
        md.get(key).iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn keys_are_found_in_any_case_and_values_keep_their_order() {
        let md = ClientMetadata::from_pairs([
            ("X-Scope-OrgID", "a"),
            ("content-type", "application/grpc"),
            ("x-scope-orgid", "b"),
        ]);
        assert_eq!(values(&md, "x-scope-orgid"), ["a", "b"]);
        assert_eq!(values(&md, "X-SCOPE-ORGID"), ["a", "b"]);
        assert!(md.get("tenant").is_empty());
        let same = ClientMetadata::from_pairs([
            ("content-type", "application/grpc"),
            ("x-scope-orgid", "a"),
            ("x-scope-orgid", "b"),
        ]);
        assert_eq!(md, same, "header order does not make metadata differ");
    }

    #[test]
    fn headers_give_host_from_the_authority_only_when_absent() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-tenant", http::HeaderValue::from_static("t1"));
        headers.insert(
            "bin",
            http::HeaderValue::from_bytes(b"\xff").expect("opaque"),
        );
        let md = ClientMetadata::from_headers(&headers, Some("collector:4317"));
        assert_eq!(values(&md, "host"), ["collector:4317"]);
        assert!(
            md.get("bin").is_empty(),
            "a value that is not text is left out"
        );
        headers.insert(http::header::HOST, http::HeaderValue::from_static("h:1"));
        let md = ClientMetadata::from_headers(&headers, Some("collector:4317"));
        assert_eq!(values(&md, "host"), ["h:1"]);
    }

    #[test]
    fn narrowing_keeps_only_the_keys_with_values() {
        let md = ClientMetadata::from_pairs([("a", "1"), ("b", "2"), ("b", "3")]);
        let narrow = md.narrowed_to(&["b".to_owned(), "c".to_owned()]);
        assert_eq!(narrow, ClientMetadata::from_pairs([("b", "2"), ("b", "3")]));
        assert!(md.narrowed_to(&["z".to_owned()]).is_empty());
    }

    #[test]
    fn encodes_and_decodes_and_refuses_damage() {
        let md = ClientMetadata::from_pairs([("x-scope-orgid", "acme"), ("k", ""), ("k", "é")]);
        let mut out = Vec::new();
        md.encode(&mut out);
        assert_eq!(ClientMetadata::decode(&out), Ok(md));
        for cut in 0..out.len() {
            assert!(ClientMetadata::decode(&out[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = out.clone();
        longer.push(0);
        assert!(ClientMetadata::decode(&longer).is_err());
        let mut huge = Vec::new();
        put_len(&mut huge, u32::MAX as usize);
        assert!(ClientMetadata::decode(&huge).is_err());
    }
}
