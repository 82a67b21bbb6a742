//! `service.telemetry.logs.sampling`: zap's sampler. Within each `tick`, the first
//! `initial` lines with the same level and message are written, then every `thereafter`-th
//! one (none when 0); the counts start again every tick. A burst of one repeated warning
//! then costs a few lines, not thousands.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use redline_pipeline::config::LogsSampling;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata};
use tracing_subscriber::layer::{Context, Filter};

/// Distinct messages counted per tick at most; beyond, lines are written unsampled, so the
/// sampler's memory stays bounded whatever is logged (zap counts in a fixed table too).
const MAX_KEYS: usize = 4096;

pub struct Sampler {
    config: Option<LogsSampling>,
    state: Mutex<State>,
}

struct State {
    tick_start: Instant,
    counts: HashMap<(Level, String), u64>,
}

impl Sampler {
    /// A sampler that lets everything through when `config` is `None`.
    pub fn new(config: Option<LogsSampling>) -> Self {
        Self {
            config,
            state: Mutex::new(State {
                tick_start: Instant::now(),
                counts: HashMap::new(),
            }),
        }
    }

    /// Whether the line with this level and message is written at `now`.
    fn admit(&self, level: Level, message: String, now: Instant) -> bool {
        let Some(config) = self.config else {
            return true;
        };
        let Ok(mut state) = self.state.lock() else {
            return true;
        };
        if now.duration_since(state.tick_start) >= config.tick {
            state.counts.clear();
            state.tick_start = now;
        }
        let full = state.counts.len() >= MAX_KEYS;
        let n = match state.counts.get_mut(&(level, message.clone())) {
            Some(n) => n,
            None if full => return true,
            None => state.counts.entry((level, message)).or_insert(0),
        };
        *n += 1;
        *n <= config.initial
            || (config.thereafter > 0 && (*n - config.initial) % config.thereafter == 0)
    }
}

/// The `message` field of an event.
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S> Filter<S> for Sampler {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _: &Context<'_, S>) -> bool {
        if self.config.is_none() {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.admit(*event.metadata().level(), message.0, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn first_initial_then_every_thereafter_per_tick() {
        let s = Sampler::new(Some(LogsSampling {
            tick: Duration::from_secs(10),
            initial: 2,
            thereafter: 3,
        }));
        let t0 = Instant::now();
        let written: Vec<bool> = (0..9)
            .map(|_| s.admit(Level::WARN, "retrying".into(), t0))
            .collect();
        assert_eq!(
            written,
            [true, true, false, false, true, false, false, true, false]
        );
        // Another message or level has its own count.
        assert!(s.admit(Level::WARN, "other".into(), t0));
        assert!(s.admit(Level::ERROR, "retrying".into(), t0));
        // A new tick starts the counts again.
        assert!(s.admit(Level::WARN, "retrying".into(), t0 + Duration::from_secs(10)));
        // thereafter 0: nothing after the first ones.
        let s = Sampler::new(Some(LogsSampling {
            tick: Duration::from_secs(10),
            initial: 1,
            thereafter: 0,
        }));
        assert!(s.admit(Level::INFO, "x".into(), t0));
        assert!(!s.admit(Level::INFO, "x".into(), t0));
        assert!(!s.admit(Level::INFO, "x".into(), t0));
        // No sampling configured: everything.
        let s = Sampler::new(None);
        assert!((0..100).all(|_| s.admit(Level::INFO, "x".into(), t0)));
    }
}
