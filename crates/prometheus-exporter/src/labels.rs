//! The label block of a series: `{k="v",…` (no closing brace), rendered once per series and
//! copied into each of its lines.
//!
//! The keys are the same for every series of a family (a source passes the same few attribute
//! keys 100k times), so what depends only on a key is worked out once per render and cached:
//! its Prometheus name, whether it has one at all, which other keys translate to the same name,
//! whether it shadows a const label. Per series only the values are escaped. A series the
//! cache cannot take (too many distinct keys, or a key shadowing a const label) goes through
//! the uncached path, which is the reference the cached one is tested against.

use crate::escape::push_label_value;
use crate::names;
use crate::render::RenderOptions;

/// Distinct keys cached per render. A series' labels are tracked in a `u64` mask with one bit
/// per distinct translated name; keys past this many take the uncached path.
const MAX_CACHED_KEYS: usize = 64;

/// What the renderer needs to know about one attribute key.
struct CachedKey {
    raw: Box<str>,
    /// `name="`, or `None` when the key has no Prometheus form (its label is left out).
    head: Option<Box<[u8]>>,
    /// Length of the name at the start of `head`.
    name_len: usize,
    /// The bit of the first cached key with the same translated name: keys that translate
    /// alike are one label, of which a series keeps the first.
    bit: u64,
    /// The translated name is a const label's (the series' label then replaces it).
    shadows_const: bool,
}

impl CachedKey {
    fn name(&self) -> Option<&[u8]> {
        self.head.as_deref().and_then(|h| h.get(..self.name_len))
    }
}

/// Builds label blocks; one per render, so the key cache lives as long as one scrape.
pub(crate) struct LabelBlock {
    block: Vec<u8>,
    keys: Vec<CachedKey>,
    /// For each label position, the index in `keys` of the key found there in the previous
    /// series: tried first, since consecutive series have the same keys in the same order.
    recent: Vec<usize>,
    /// Uncached path: `(start, end)` of each label name inside `block`, for duplicate checks.
    key_spans: Vec<(usize, usize)>,
    /// The last series had two labels of one name after translation (or one of a const
    /// label's name).
    collided: bool,
}

impl LabelBlock {
    pub(crate) fn new() -> Self {
        Self {
            block: Vec::with_capacity(256),
            keys: Vec::new(),
            recent: Vec::new(),
            key_spans: Vec::with_capacity(16),
            collided: false,
        }
    }

    /// Whether the last series repeated a label name after translation, or had a const
    /// label's name: client_golang refuses such a series (otelcol logs and skips it).
    pub(crate) fn collided(&self) -> bool {
        self.collided
    }

    /// The block of the last [`render`](Self::render): `{k="v",…`, empty without labels.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.block
    }

    /// Renders the labels of one series, then the const labels the series does not override.
    /// A key with no valid form is left out; of keys that translate to the same name, the first
    /// wins, and [`collided`](Self::collided) says so.
    pub(crate) fn render(&mut self, labels: &[(&str, &str)], opts: &RenderOptions) {
        self.collided = false;
        if !self.render_cached(labels, opts) {
            self.render_uncached(labels, opts);
        }
    }

    /// The fast path; false (with `block` in an unspecified state) for a series it does not
    /// handle.
    fn render_cached(&mut self, labels: &[(&str, &str)], opts: &RenderOptions) -> bool {
        self.block.clear();
        let mut present: u64 = 0;
        for (pos, (key, value)) in labels.iter().enumerate() {
            let Some(k) = self
                .key_index(pos, key, opts)
                .and_then(|i| self.keys.get(i))
            else {
                return false;
            };
            if k.shadows_const {
                return false;
            }
            let Some(head) = k.head.as_deref() else {
                continue;
            };
            if present & k.bit != 0 {
                self.collided = true;
                continue;
            }
            present |= k.bit;
            self.block
                .push(if self.block.is_empty() { b'{' } else { b',' });
            self.block.extend_from_slice(head);
            push_label_value(&mut self.block, value);
            self.block.push(b'"');
        }
        // No series label shadows a const label (checked above): all of them follow.
        push_fragment(&mut self.block, opts.const_fragment());
        true
    }

    /// Index in `keys` of `key` (adding it), or `None` once the cache is full.
    fn key_index(&mut self, pos: usize, key: &str, opts: &RenderOptions) -> Option<usize> {
        let recent = self.recent.get(pos).copied();
        let is_key = |i: usize| {
            self.keys
                .get(i)
                .is_some_and(|k| same_key(k.raw.as_bytes(), key.as_bytes()))
        };
        if let Some(i) = recent.filter(|&i| is_key(i)) {
            return Some(i);
        }
        let i = match (0..self.keys.len()).find(|&i| is_key(i)) {
            Some(i) => i,
            None if self.keys.len() < MAX_CACHED_KEYS => self.add_key(key, opts),
            None => return None,
        };
        if self.recent.len() <= pos {
            self.recent.resize(pos + 1, i);
        }
        if let Some(slot) = self.recent.get_mut(pos) {
            *slot = i;
        }
        Some(i)
    }

    fn add_key(&mut self, key: &str, opts: &RenderOptions) -> usize {
        let mut head = Vec::with_capacity(key.len() + 6);
        let (head, name_len, bit, shadows_const) = if names::push_label_name(&mut head, key) {
            let name_len = head.len();
            let name = &head[..];
            let bit = self
                .keys
                .iter()
                .find(|k| k.name() == Some(name))
                .map_or(1u64 << self.keys.len(), |k| k.bit);
            let shadows_const = opts.const_keys().iter().any(|c| c.as_bytes() == name);
            head.extend_from_slice(b"=\"");
            (Some(head.into_boxed_slice()), name_len, bit, shadows_const)
        } else {
            (None, 0, 0, false)
        };
        self.keys.push(CachedKey {
            raw: key.into(),
            head,
            name_len,
            bit,
            shadows_const,
        });
        self.keys.len() - 1
    }

    /// The straightforward version: translates every key of the series and compares names.
    fn render_uncached(&mut self, labels: &[(&str, &str)], opts: &RenderOptions) {
        self.block.clear();
        self.key_spans.clear();
        for (key, value) in labels {
            let mark = self.block.len();
            self.block.push(if mark == 0 { b'{' } else { b',' });
            let key_start = self.block.len();
            if !names::push_label_name(&mut self.block, key) {
                self.block.truncate(mark);
                continue;
            }
            let key_end = self.block.len();
            let new_key = &self.block[key_start..key_end];
            // Two keys that translate to the same name would make the whole scrape invalid;
            // the first one wins. Series labels win over const labels.
            let dup = self
                .key_spans
                .iter()
                .any(|&(s, e)| self.block[s..e] == *new_key);
            if dup {
                self.collided = true;
                self.block.truncate(mark);
                continue;
            }
            self.key_spans.push((key_start, key_end));
            self.block.extend_from_slice(b"=\"");
            push_label_value(&mut self.block, value);
            self.block.push(b'"');
        }
        let const_keys = opts.const_keys();
        if const_keys.is_empty() {
            return;
        }
        let collides = self.key_spans.iter().any(|&(s, e)| {
            let k = &self.block[s..e];
            const_keys.iter().any(|c| c.as_bytes() == k)
        });
        if !collides {
            push_fragment(&mut self.block, opts.const_fragment());
            return;
        }
        self.collided = true;
        for (key, frag) in const_keys.iter().zip(const_fragments(opts)) {
            let taken = self
                .key_spans
                .iter()
                .any(|&(s, e)| self.block[s..e] == *key.as_bytes());
            if !taken {
                push_fragment(&mut self.block, frag);
            }
        }
    }
}

/// Appends `,k="v"…` label pieces to a block, opening it with `{` instead of the leading comma
/// when it is still empty.
fn push_fragment(block: &mut Vec<u8>, fragment: &[u8]) {
    if fragment.is_empty() {
        return;
    }
    if block.is_empty() {
        block.push(b'{');
        block.extend_from_slice(fragment.get(1..).unwrap_or_default());
    } else {
        block.extend_from_slice(fragment);
    }
}

/// Byte equality without a `memcmp` call, which costs more than the comparison itself on keys
/// of a dozen bytes (one per label of every series): whole words, then one word ending at the
/// last byte (overlapping, harmless for equality).
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() >= 8 {
        let word = |w: Option<&[u8; 8]>| u64::from_ne_bytes(w.copied().unwrap_or_default());
        let (a_words, _) = a.as_chunks::<8>();
        let (b_words, _) = b.as_chunks::<8>();
        a_words
            .iter()
            .zip(b_words)
            .all(|(x, y)| word(Some(x)) == word(Some(y)))
            && word(a.last_chunk()) == word(b.last_chunk())
    } else if a.len() >= 4 {
        let word = |w: Option<&[u8; 4]>| u32::from_ne_bytes(w.copied().unwrap_or_default());
        word(a.first_chunk()) == word(b.first_chunk())
            && word(a.last_chunk()) == word(b.last_chunk())
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}

/// Splits the precomputed const fragment back into one `,k="v"` piece per label (only on the
/// rare collision path).
fn const_fragments(opts: &RenderOptions) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(opts.const_keys().len());
    let frag = opts.const_fragment();
    let mut start = 0;
    let mut in_value = false;
    let mut escaped = false;
    for (i, &b) in frag.iter().enumerate() {
        if in_value {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_value = false;
                pieces.push(&frag[start..=i]);
                start = i + 1;
            }
        } else if b == b'"' {
            in_value = true;
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uncached(labels: &[(&str, &str)], opts: &RenderOptions) -> Vec<u8> {
        let mut b = LabelBlock::new();
        b.render_uncached(labels, opts);
        b.block
    }

    /// Renders `series` in order through one builder (so the cache carries over, as within a
    /// scrape) and checks each block against the uncached path. Returns how many series the
    /// cached path took.
    fn check_series(series: &[Vec<(&str, &str)>], opts: &RenderOptions) -> usize {
        let mut b = LabelBlock::new();
        let mut cached = 0;
        for labels in series {
            if b.render_cached(labels, opts) {
                cached += 1;
            } else {
                b.render_uncached(labels, opts);
            }
            let want = uncached(labels, opts);
            assert_eq!(
                String::from_utf8_lossy(b.as_bytes()),
                String::from_utf8_lossy(&want),
                "{labels:?}"
            );
            b.render(labels, opts);
            assert!(b.as_bytes() == want, "{labels:?}");
        }
        cached
    }

    fn option_sets() -> Vec<RenderOptions> {
        [
            vec![],
            vec![("env", "prod")],
            vec![("env", "prod"), ("region", "e\"u\\")],
            vec![("a.b", "const"), ("zone", "z")],
        ]
        .into_iter()
        .map(|c| RenderOptions::new(None, c, true).expect("valid options"))
        .collect()
    }

    #[test]
    fn cached_blocks_match_the_uncached_path() {
        let series: Vec<Vec<(&str, &str)>> = vec![
            vec![],
            vec![("service.name", "api"), ("span.name", "GET /x")],
            vec![("service.name", "web"), ("span.name", "GET \"/y\"\n")],
            // Keys in another order, and a key that appears only sometimes.
            vec![("span.name", "a"), ("service.name", "b"), ("extra", "c")],
            vec![("service.name", "api"), ("span.name", "GET /x")],
            // Keys that translate alike: the first wins, in either order.
            vec![("a.b", "1"), ("a_b", "2"), ("a-b", "3")],
            vec![("a_b", "2"), ("a.b", "1")],
            // The same key twice.
            vec![("x", "1"), ("x", "2")],
            // No valid form (empty key), leading digit, single leading underscore.
            vec![("", "lost"), ("9x", "4"), ("_p", "5"), ("__r", "6")],
            vec![("", "only")],
            // Shadowing a const label (`env`, or `a.b` as `a_b`).
            vec![("env", "series"), ("k", "v")],
            vec![("k", "v"), ("a_b", "mine")],
            vec![("ключ", "значение"), ("k", "v")],
        ];
        for opts in option_sets() {
            // All but the series shadowing a const label (three with `a.b` const).
            let cached = check_series(&series, &opts);
            assert!(cached >= series.len() - 3, "{cached} of {}", series.len());
        }
    }

    #[test]
    fn key_equality_is_byte_equality() {
        for len in 0..=20usize {
            let key: Vec<u8> = (0..len).map(|i| b'a' + i as u8).collect();
            assert!(same_key(&key, &key.clone()), "{len}");
            assert!(!same_key(&key, &key[..len.saturating_sub(1)]) || len == 0);
            for at in 0..len {
                let mut other = key.clone();
                other[at] ^= 0x20;
                assert!(!same_key(&key, &other), "{len} {at}");
            }
        }
    }

    #[test]
    fn more_distinct_keys_than_the_cache_holds() {
        let keys: Vec<String> = (0..3 * MAX_CACHED_KEYS).map(|i| format!("k.{i}")).collect();
        let mut series: Vec<Vec<(&str, &str)>> = keys
            .chunks(5)
            .map(|c| c.iter().map(|k| (k.as_str(), "v")).collect())
            .collect();
        // Cached keys keep working once the cache is full, alongside uncached ones.
        series.push(vec![("k.0", "first"), ("k.0", "again")]);
        series.push(vec![("k.0", "cached"), ("k.191", "not cached")]);
        series.push(vec![("k_0", "alias of k.0"), ("k.0", "dup")]);
        for opts in option_sets() {
            let cached = check_series(&series, &opts);
            assert!(cached > 0 && cached < series.len(), "{cached}");
        }
    }
}
