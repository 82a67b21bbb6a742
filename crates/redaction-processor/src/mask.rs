//! Masking a value: every match of a regex replaced by `****`, or by the hex digest of the
//! matched text when a `hash_function` is set.

use hmac::{Hmac, Mac};
use md5::Md5;
use redline_pipeline::config::Secret;
use regex::Regex;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use sha3::Sha3_256;

/// `hash_function`.
#[derive(Clone)]
pub enum Hash {
    /// `****` for every match.
    None,
    Sha1,
    /// SHA3-256.
    Sha3,
    Md5,
    HmacSha256(Secret),
    HmacSha512(Secret),
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys never reach a message.
        f.write_str(match self {
            Hash::None => "none",
            Hash::Sha1 => "sha1",
            Hash::Sha3 => "sha3",
            Hash::Md5 => "md5",
            Hash::HmacSha256(_) => "hmac-sha256",
            Hash::HmacSha512(_) => "hmac-sha512",
        })
    }
}

impl Hash {
    /// The function `name` (any case) names; the HMAC ones need a key of at least the
    /// digest's block size / 2 (32 and 64 bytes), as otelcol checks. The error names its key.
    pub fn parse(name: &str, key: &Secret) -> Result<Hash, (&'static str, String)> {
        let hmac = |min: usize, name: &str| {
            if key.is_empty() {
                return Err((
                    "hmac_key",
                    format!("hmac_key must not be empty when hash_function is {name:?}"),
                ));
            }
            let len = key.expose().len();
            if len < min {
                return Err((
                    "hmac_key",
                    format!(
                        "hmac_key must be at least {min} bytes long for {name:?}, got {len} bytes"
                    ),
                ));
            }
            Ok(key.clone())
        };
        Ok(match name.to_lowercase().as_str() {
            "" => Hash::None,
            "sha1" => Hash::Sha1,
            "sha3" => Hash::Sha3,
            "md5" => Hash::Md5,
            "hmac-sha256" => Hash::HmacSha256(hmac(32, "hmac-sha256")?),
            "hmac-sha512" => Hash::HmacSha512(hmac(64, "hmac-sha512")?),
            other => {
                return Err((
                    "hash_function",
                    format!(
                        "unknown HashFunction {other}, allowed functions are sha1, sha3, md5, \
                         hmac-sha256 and hmac-sha512"
                    ),
                ))
            }
        })
    }

    fn replacement(&self, matched: &str) -> String {
        let input = matched.as_bytes();
        match self {
            Hash::None => "****".to_owned(),
            Hash::Sha1 => hex(&Sha1::digest(input)),
            Hash::Sha3 => hex(&Sha3_256::digest(input)),
            Hash::Md5 => hex(&Md5::digest(input)),
            Hash::HmacSha256(key) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes())
                    .expect("HMAC takes a key of any length");
                mac.update(input);
                hex(&mac.finalize().into_bytes())
            }
            Hash::HmacSha512(key) => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key.expose().as_bytes())
                    .expect("HMAC takes a key of any length");
                mac.update(input);
                hex(&mac.finalize().into_bytes())
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Replaces matches as configured.
#[derive(Debug)]
pub struct Masker {
    hash: Hash,
    /// `.*`: a whole value masked at once (a key in `blocked_key_patterns`).
    everything: Regex,
}

impl Masker {
    pub fn new(hash: Hash) -> Self {
        Self {
            hash,
            // otelcol's `regexp.MustCompile(".*")`: `.` stops at a newline.
            everything: redline_go_regex::compile(".*").expect("a constant pattern"),
        }
    }

    /// The value masked as otelcol masks one whose key is blocked: every `.*` match, so a
    /// line at a time (`""` becomes `****` too).
    pub fn whole(&self, value: &str) -> String {
        self.replace(&self.everything, value)
    }

    /// Go's `Regexp.ReplaceAllStringFunc`: every match, left to right, replaced; an empty
    /// match right after a match is skipped, as Go skips it.
    pub fn replace(&self, re: &Regex, value: &str) -> String {
        let mut out = String::with_capacity(value.len());
        let mut last = 0;
        let mut previous_end = None;
        for m in re.find_iter(value) {
            if m.is_empty() && previous_end == Some(m.start()) {
                continue;
            }
            out.push_str(&value[last..m.start()]);
            out.push_str(&self.hash.replacement(m.as_str()));
            last = m.end();
            previous_end = Some(m.end());
        }
        out.push_str(&value[last..]);
        out
    }
}
