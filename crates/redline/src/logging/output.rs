//! Where log lines go (`service.telemetry.logs.output_paths`), with the `initial_fields`
//! added to every line, and whether they may be coloured.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use redline_pipeline::config::{AttributeValue, LogOutput};
use tracing_subscriber::fmt::MakeWriter;

/// The outputs of every log line. Cheap to clone.
#[derive(Clone)]
pub struct Outputs {
    inner: Arc<Inner>,
}

struct Inner {
    targets: Vec<Target>,
    /// The initial fields, written as the format writes fields.
    suffix: Suffix,
}

enum Target {
    Stdout,
    Stderr,
    File(Mutex<File>),
}

/// Fields appended to each line: `,"k":"v"` inside a JSON object, or ` k=v` after text.
#[derive(Debug, PartialEq)]
enum Suffix {
    None,
    Json(String),
    Text(String),
}

impl Outputs {
    /// Opens the outputs (files are appended to and created if missing); `None` is stderr,
    /// as for zap.
    pub fn open(
        paths: Option<&[LogOutput]>,
        fields: &[(String, AttributeValue)],
        json: bool,
    ) -> anyhow::Result<Self> {
        let targets = match paths {
            None => vec![Target::Stderr],
            Some(paths) => paths
                .iter()
                .map(|p| match p {
                    LogOutput::Stdout => Ok(Target::Stdout),
                    LogOutput::Stderr => Ok(Target::Stderr),
                    LogOutput::File(path) => OpenOptions::new()
                        .append(true)
                        .create(true)
                        .open(path)
                        .map(|f| Target::File(Mutex::new(f)))
                        .with_context(|| {
                            format!(
                                "service.telemetry.logs.output_paths: opening `{}`",
                                path.display()
                            )
                        }),
                })
                .collect::<anyhow::Result<_>>()?,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                targets,
                suffix: suffix(fields, json),
            }),
        })
    }

    /// Lines may carry colour codes when every output is a terminal and `NO_COLOR` is not
    /// set (https://no-color.org): a file or a pipe must get plain text.
    pub fn colour(&self, no_color: Option<&OsStr>) -> bool {
        colour(
            self.inner.targets.iter().map(|t| match t {
                Target::Stdout => io::stdout().is_terminal(),
                Target::Stderr => io::stderr().is_terminal(),
                Target::File(_) => false,
            }),
            no_color,
        )
    }

    fn emit(&self, data: &[u8]) {
        for line in data.split_inclusive(|b| *b == b'\n') {
            let line = decorate(line, &self.inner.suffix);
            // A log line that cannot be written has nowhere else to be reported.
            for target in &self.inner.targets {
                let _ = match target {
                    Target::Stdout => io::stdout().lock().write_all(&line),
                    Target::Stderr => io::stderr().lock().write_all(&line),
                    Target::File(f) => match f.lock() {
                        Ok(mut f) => f.write_all(&line),
                        Err(_) => Ok(()),
                    },
                };
            }
        }
    }
}

fn colour(terminals: impl Iterator<Item = bool>, no_color: Option<&OsStr>) -> bool {
    if no_color.is_some_and(|v| !v.is_empty()) {
        return false;
    }
    let mut any = false;
    for is_terminal in terminals {
        if !is_terminal {
            return false;
        }
        any = true;
    }
    any
}

fn suffix(fields: &[(String, AttributeValue)], json: bool) -> Suffix {
    if fields.is_empty() {
        return Suffix::None;
    }
    let mut out = String::new();
    for (key, value) in fields {
        if json {
            let value = match value {
                AttributeValue::Str(s) => json_string(s),
                AttributeValue::Double(d) if !d.is_finite() => json_string(&d.to_string()),
                other => other.to_string(),
            };
            out.push_str(&format!(",{}:{value}", json_string(key)));
        } else {
            let text = value.to_string();
            let plain = !text.is_empty()
                && !text.contains(|c: char| c.is_whitespace() || c == '"' || c == '=');
            if plain {
                out.push_str(&format!(" {key}={text}"));
            } else {
                out.push_str(&format!(" {key}={text:?}"));
            }
        }
    }
    if json {
        Suffix::Json(out)
    } else {
        Suffix::Text(out)
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// One line with the initial fields added: before the closing `}` of a JSON object, before
/// the line break of text.
fn decorate(line: &[u8], suffix: &Suffix) -> Vec<u8> {
    let body_len = line.len() - usize::from(line.ends_with(b"\n"));
    let (body, end) = line.split_at(body_len);
    let mut out = Vec::with_capacity(line.len() + 64);
    match suffix {
        Suffix::None => out.extend_from_slice(line),
        Suffix::Json(fields) => match body.iter().rposition(|b| *b == b'}') {
            Some(close) => {
                out.extend_from_slice(&body[..close]);
                out.extend_from_slice(fields.as_bytes());
                out.extend_from_slice(&body[close..]);
                out.extend_from_slice(end);
            }
            None => out.extend_from_slice(line),
        },
        Suffix::Text(fields) => {
            out.extend_from_slice(body);
            out.extend_from_slice(fields.as_bytes());
            out.extend_from_slice(end);
        }
    }
    out
}

impl<'a> MakeWriter<'a> for Outputs {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            outputs: self.clone(),
            buf: Vec::new(),
        }
    }
}

/// Collects one event's text and writes it, decorated, when dropped: the formatters write
/// an event in pieces, and the fields go at the end of the whole line.
pub struct LineWriter {
    outputs: Outputs,
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.outputs.emit(&self.buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_terminals_without_no_color() {
        assert!(colour([true].into_iter(), None));
        assert!(colour([true, true].into_iter(), Some(OsStr::new(""))));
        assert!(!colour([true].into_iter(), Some(OsStr::new("1"))));
        assert!(!colour([true, false].into_iter(), None));
        assert!(!colour(std::iter::empty(), None));
    }

    fn fields() -> Vec<(String, AttributeValue)> {
        vec![
            ("region".into(), AttributeValue::Str("eu west".into())),
            ("shard".into(), AttributeValue::Int(3)),
            ("canary".into(), AttributeValue::Bool(true)),
        ]
    }

    #[test]
    fn initial_fields_end_every_line() {
        let json = suffix(&fields(), true);
        assert_eq!(
            decorate(b"{\"level\":\"INFO\",\"message\":\"up\"}\n", &json),
            b"{\"level\":\"INFO\",\"message\":\"up\",\"region\":\"eu west\",\"shard\":3,\"canary\":true}\n"
        );
        let text = suffix(&fields(), false);
        assert_eq!(
            decorate(b"2024 INFO up addr=1\n", &text),
            b"2024 INFO up addr=1 region=\"eu west\" shard=3 canary=true\n"
        );
        assert_eq!(decorate(b"x\n", &Suffix::None), b"x\n");
    }

    #[test]
    fn lines_go_to_every_file_output() {
        let dir = std::env::temp_dir().join(format!("redline-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (a, b) = (dir.join("a.log"), dir.join("b.log"));
        let outputs = Outputs::open(
            Some(&[LogOutput::File(a.clone()), LogOutput::File(b.clone())]),
            &fields()[1..2],
            false,
        )
        .expect("opens");
        assert!(!outputs.colour(None), "files are never coloured");
        {
            let mut w = outputs.make_writer();
            w.write_all(b"first").expect("write");
            w.write_all(b" line\n").expect("write");
        }
        for path in [&a, &b] {
            assert_eq!(
                std::fs::read_to_string(path).expect("read"),
                "first line shard=3\n"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
