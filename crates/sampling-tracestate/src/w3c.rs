//! A W3C `tracestate` header value: `,`-separated `key=value` members, of which `ot` is
//! parsed as [`OtelTraceState`] and every other vendor's member is kept as received.
//!
//! Limits and their quirks are otelcol's, because what it rejects decides what it samples:
//! at most 1024 bytes; keys of at most 256 bytes (tenant 241, system 14); and the member
//! count check fires on the 32nd member, empty members included.

use crate::{OtelTraceState, SamplingError};

const MAX_LENGTH: usize = 1024;
const MAX_MEMBERS: usize = 32;
const MAX_KEY_LENGTH: usize = 256;
const MAX_TENANT_LENGTH: usize = 241;
const MAX_SYSTEM_LENGTH: usize = 14;
const MAX_VALUE_LENGTH: usize = 256;

const OTEL_VENDOR: &str = "ot";

/// A parsed `tracestate`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct W3cTraceState {
    otel: OtelTraceState,
    /// Other vendors' members, in order, with surrounding whitespace trimmed.
    extra: Vec<(String, String)>,
}

impl W3cTraceState {
    /// Parses a tracestate; any problem is an error.
    pub fn parse(input: &str) -> Result<W3cTraceState, SamplingError> {
        match Self::parse_partial(input) {
            (state, None) => Ok(state),
            (_, Some(e)) => Err(e),
        }
    }

    /// Parses a tracestate the way otelcol does, returning what was read even when there is
    /// an error: a malformed or oversized header reads as empty; a bad member is left out;
    /// parsing stops at the member count limit.
    pub fn parse_partial(input: &str) -> (W3cTraceState, Option<SamplingError>) {
        let mut state = W3cTraceState::default();
        if input.is_empty() {
            return (state, None);
        }
        if input.len() > MAX_LENGTH {
            return (state, Some(SamplingError::TraceStateSize));
        }
        if !is_valid_tracestate(input) {
            return (state, Some(SamplingError::Syntax));
        }
        let mut first_error = None;
        for (index, member) in members(input).enumerate() {
            if index + 1 >= MAX_MEMBERS {
                return (state, Some(SamplingError::TraceStateSize));
            }
            let member = trim_ows(member);
            let Some((key, value)) = member.split_once('=') else {
                continue;
            };
            if let Err(e) = state.add_member(key, value) {
                first_error.get_or_insert(e);
            }
        }
        (state, first_error)
    }

    fn add_member(&mut self, key: &str, value: &str) -> Result<(), SamplingError> {
        if key.len() > MAX_KEY_LENGTH {
            return Err(SamplingError::TraceStateSize);
        }
        if let Some((tenant, system)) = key.split_once('@') {
            if tenant.len() > MAX_TENANT_LENGTH || system.len() > MAX_SYSTEM_LENGTH {
                return Err(SamplingError::TraceStateSize);
            }
        }
        if key == OTEL_VENDOR {
            let (otel, err) = OtelTraceState::parse(value);
            self.otel = otel;
            return err.map_or(Ok(()), Err);
        }
        self.extra.push((key.to_owned(), value.to_owned()));
        Ok(())
    }

    pub fn otel(&self) -> &OtelTraceState {
        &self.otel
    }

    pub fn otel_mut(&mut self) -> &mut OtelTraceState {
        &mut self.otel
    }

    /// Other vendors' members, in order.
    pub fn extra(&self) -> &[(String, String)] {
        &self.extra
    }

    pub fn has_any_value(&self) -> bool {
        self.otel.has_any_value() || !self.extra.is_empty()
    }

    /// The header value: `ot=` first (when it has anything), then the other members.
    pub fn serialize(&self) -> String {
        let mut out = String::new();
        if self.otel.has_any_value() {
            out.push_str("ot=");
            self.otel.write_to(&mut out);
        }
        for (key, value) in &self.extra {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        }
        out
    }
}

/// The members between commas; a trailing comma does not make an empty last member.
fn members(input: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(input);
    std::iter::from_fn(move || {
        let current = rest.filter(|r| !r.is_empty())?;
        match current.split_once(',') {
            Some((member, after)) => {
                rest = Some(after);
                Some(member)
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn is_valid_tracestate(input: &str) -> bool {
    members(input).all(|member| {
        let member = trim_ows(member);
        if member.is_empty() {
            return true;
        }
        match member.split_once('=') {
            Some((key, value)) => is_valid_key(key) && is_valid_value(value),
            None => false,
        }
    })
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

/// `lcalpha *keychar`, or `tenant@system` with the tenant starting with a letter or digit
/// and the system with a letter. Lengths are checked while parsing, as otelcol does.
fn is_valid_key(key: &str) -> bool {
    let starts = |s: &str, first: fn(&u8) -> bool| s.as_bytes().first().is_some_and(first);
    let rest_ok = |s: &str| s.bytes().skip(1).all(is_key_char);
    match key.split_once('@') {
        Some((tenant, system)) => {
            starts(tenant, |b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && starts(system, u8::is_ascii_lowercase)
                && rest_ok(tenant)
                && rest_ok(system)
        }
        None => starts(key, u8::is_ascii_lowercase) && rest_ok(key),
    }
}

/// Printable ASCII but `,` and `=`, spaces allowed except last, 1 to 256 bytes.
fn is_valid_value(value: &str) -> bool {
    let non_blank = |b: u8| matches!(b, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    match value.as_bytes().split_last() {
        Some((&last, rest)) => {
            value.len() <= MAX_VALUE_LENGTH
                && non_blank(last)
                && rest.iter().all(|&b| b == b' ' || non_blank(b))
        }
        None => false,
    }
}

#[cfg(test)]
#[path = "w3c_tests.rs"]
mod tests;
