//! Go's `net/http/pprof` endpoints, as far as a Rust process has them: the index, `cmdline`
//! and the CPU `profile`. Go's runtime profiles (heap, goroutine, ...) do not exist here and
//! are answered 404 with a message that says so.

use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use redline_pipeline::{percent, ComponentId};
use tokio::sync::watch;

use crate::cpu::{self, CpuProfile};

/// Go's default when `seconds` is missing, not a number, or not positive.
pub const DEFAULT_SECONDS: u64 = 30;
/// Go has no limit; a CPU profile holds the process's one profiler for its whole length, so
/// a mistyped `seconds=86400` would lock everyone else out for a day. An hour is longer than
/// any profile worth taking over HTTP.
pub const MAX_SECONDS: u64 = 3600;

/// Profiles Go's net/http/pprof serves from the Go runtime: Redline has no such thing.
const GO_RUNTIME_PROFILES: [&str; 9] = [
    "allocs",
    "block",
    "goroutine",
    "goroutineleak",
    "heap",
    "mutex",
    "symbol",
    "threadcreate",
    "trace",
];

const NOSNIFF: (HeaderName, HeaderValue) = (
    header::X_CONTENT_TYPE_OPTIONS,
    HeaderValue::from_static("nosniff"),
);
const TEXT: (HeaderName, HeaderValue) = (
    header::CONTENT_TYPE,
    HeaderValue::from_static("text/plain; charset=utf-8"),
);

#[derive(Clone)]
pub struct Serving {
    pub id: ComponentId,
    /// Turns true at shutdown: profiles in progress end early and are answered.
    pub stopping: watch::Receiver<bool>,
}

pub fn router(state: Serving) -> Router {
    Router::new()
        .route("/debug/pprof", get(redirect_to_index))
        .route("/debug/pprof/", get(index))
        .route("/debug/pprof/cmdline", get(cmdline))
        .route("/debug/pprof/profile", get(profile))
        .route("/debug/pprof/{*name}", get(unknown_profile))
        .fallback(not_found)
        .with_state(state)
}

/// Go's ServeMux sends a subtree's path without its slash to the subtree.
async fn redirect_to_index() -> Response {
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, "/debug/pprof/")],
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [TEXT, NOSNIFF],
        "404 page not found\n",
    )
        .into_response()
}

/// net/http/pprof's error answer: `X-Go-Pprof` tells `go tool pprof` to show the body.
fn pprof_error(status: StatusCode, text: &str) -> Response {
    (
        status,
        [
            TEXT,
            NOSNIFF,
            (
                HeaderName::from_static("x-go-pprof"),
                HeaderValue::from_static("1"),
            ),
        ],
        format!("{text}\n"),
    )
        .into_response()
}

/// Any other name under /debug/pprof/. The name is read from the path by hand: a path axum's
/// extractor would refuse (a bad escape, bytes that are not UTF-8) is still just an unknown
/// profile.
async fn unknown_profile(uri: axum::http::Uri) -> Response {
    let raw = uri.path().strip_prefix("/debug/pprof/").unwrap_or_default();
    let decoded = percent::decode(raw, false).unwrap_or_else(|| raw.as_bytes().to_vec());
    let name = String::from_utf8_lossy(&decoded).into_owned();
    if GO_RUNTIME_PROFILES.contains(&name.as_str()) {
        let text = format!(
            "Unknown profile: `{name}` is a Go runtime profile; Redline is written in Rust and \
             serves CPU profiles only (/debug/pprof/profile)"
        );
        return pprof_error(StatusCode::NOT_FOUND, &text);
    }
    pprof_error(StatusCode::NOT_FOUND, "Unknown profile")
}

async fn index() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            NOSNIFF,
        ],
        INDEX,
    )
        .into_response()
}

/// Go's page, listing what Redline has.
const INDEX: &str = "<html>
<head>
<title>/debug/pprof/</title>
<style>
.profile-name{
\tdisplay:inline-block;
\twidth:6rem;
}
</style>
</head>
<body>
/debug/pprof/
<br>
Types of profiles available:
<table>
<thead><td>Count</td><td>Profile</td></thead>
<tr><td>0</td><td><a href='cmdline'>cmdline</a></td></tr>
<tr><td>0</td><td><a href='profile'>profile</a></td></tr>
</table>
<p>
Profile Descriptions:
<ul>
<li><div class=profile-name>cmdline: </div> The command line invocation of the current program</li>
<li><div class=profile-name>profile: </div> CPU profile. You can specify the duration in the seconds GET parameter (at most 3600). After you get the profile file, use the go tool pprof command to investigate the profile.</li>
</ul>
</p>
<p>Redline is written in Rust: the Go runtime profiles (allocs, block, goroutine, heap, mutex, symbol, threadcreate, trace) do not exist in it.</p>
</body>
</html>";

async fn cmdline() -> Response {
    ([TEXT, NOSNIFF], command_line(std::env::args_os())).into_response()
}

/// The process's arguments, program name included, joined by NUL bytes (Go's `os.Args`
/// joined by "\x00"). Arguments that are not UTF-8 are sent as they are.
pub fn command_line(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, arg) in args.enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(&os_bytes(&arg));
    }
    out
}

#[cfg(unix)]
fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    std::os::unix::ffi::OsStrExt::as_bytes(s).to_vec()
}

#[cfg(not(unix))]
fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}

async fn profile(State(s): State<Serving>, RawQuery(query): RawQuery) -> Response {
    let asked = percent::query_value(query.as_deref().unwrap_or(""), "seconds");
    let seconds = seconds(asked.as_deref());
    if asked
        .as_deref()
        .and_then(go_parse_int)
        .is_some_and(|v| v > MAX_SECONDS as i64)
    {
        tracing::info!(
            extension = %s.id,
            asked = %String::from_utf8_lossy(asked.as_deref().unwrap_or_default()),
            seconds,
            "CPU profile length cut to Redline's maximum"
        );
    }
    let running = match cpu::blocking(CpuProfile::start).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(extension = %s.id, error = %e, "CPU profile refused");
            return pprof_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("Could not enable CPU profiling: {e}"),
            );
        }
    };
    tracing::info!(extension = %s.id, seconds, "CPU profile started");
    let mut stopping = s.stopping.clone();
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
        _ = stopping.wait_for(|stop| *stop) => {
            tracing::info!(extension = %s.id, "CPU profile ended early: the extension is stopping");
        }
    }
    match cpu::blocking(move || running.finish()).await {
        Ok(body) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_static("attachment; filename=\"profile\""),
                ),
                NOSNIFF,
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(extension = %s.id, error = %e, "CPU profile failed");
            pprof_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("Could not take the CPU profile: {e}"),
            )
        }
    }
}

/// The profile's length from the `seconds` parameter, read as Go's `strconv.ParseInt`: an
/// optional sign and decimal digits; anything else, an overflow, or a value of 0 or less
/// means 30 s. Longer than [`MAX_SECONDS`] is cut to it.
pub fn seconds(value: Option<&[u8]>) -> u64 {
    let Some(v) = value.and_then(go_parse_int) else {
        return DEFAULT_SECONDS;
    };
    if v <= 0 {
        DEFAULT_SECONDS
    } else {
        v.unsigned_abs().min(MAX_SECONDS)
    }
}

fn go_parse_int(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for d in digits {
        let d = i64::from(d - b'0');
        v = v.checked_mul(10)?;
        v = if negative {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    fn secs(query: &str) -> u64 {
        seconds(percent::query_value(query, "seconds").as_deref())
    }

    #[test]
    fn seconds_are_read_as_go_reads_them() {
        assert_eq!(secs(""), 30, "missing");
        assert_eq!(secs("seconds=5"), 5);
        assert_eq!(secs("seconds=%2B5"), 5, "ParseInt takes a sign");
        assert_eq!(secs("seconds=+5"), 30, "`+` is a space in a query");
        assert_eq!(secs("debug=1&seconds=2&seconds=9"), 2, "the first value");
        assert_eq!(secs("seconds=0"), 30, "zero");
        assert_eq!(secs("seconds=-4"), 30, "negative");
        assert_eq!(secs("seconds="), 30, "empty");
        assert_eq!(secs("seconds=abc"), 30, "garbage");
        assert_eq!(secs("seconds=1.5"), 30, "not an integer");
        assert_eq!(secs("seconds=1_0"), 30, "no underscores in base 10");
        assert_eq!(secs("seconds=%201"), 30, "no spaces");
        assert_eq!(secs("seconds=-"), 30);
        assert_eq!(secs("seconds=+"), 30);
        assert_eq!(secs("seconds=99999999999999999999999"), 30, "overflow");
        assert_eq!(secs("seconds=-9223372036854775808"), 30, "i64::MIN");
        assert_eq!(secs("seconds=9223372036854775807"), MAX_SECONDS, "capped");
        assert_eq!(secs("seconds=3601"), MAX_SECONDS);
        assert_eq!(secs("seconds=3600"), 3600);
        assert_eq!(secs("seconds=%31%30"), 10, "escapes decode");
        assert_eq!(secs("%73econds=7"), 7, "in the key too");
        assert_eq!(
            secs("seconds=%zz&seconds=8"),
            8,
            "a bad escape skips the pair"
        );
        assert_eq!(secs("seconds=4;x=1"), 30, "a pair with `;` is skipped");
        assert_eq!(secs("seconds=%"), 30);
        assert_eq!(secs("seconds=%4"), 30);
        assert_eq!(secs("seconds=\u{e9}"), 30, "non-ASCII");
        assert_eq!(secs("&&seconds=3&"), 3);
    }

    #[test]
    fn cmdline_joins_arguments_with_nul() {
        let args = ["redline", "--config", "/etc/a b.yaml"].map(OsString::from);
        assert_eq!(
            command_line(args.into_iter()),
            b"redline\0--config\0/etc/a b.yaml"
        );
        assert_eq!(command_line(std::iter::once("x".into())), b"x");
        assert_eq!(command_line(std::iter::empty()), b"");
    }

    #[cfg(unix)]
    #[test]
    fn cmdline_keeps_bytes_that_are_not_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let args = [OsString::from("a"), OsString::from_vec(vec![0xff, 0x41])];
        assert_eq!(command_line(args.into_iter()), [b'a', 0, 0xff, 0x41]);
    }
}
