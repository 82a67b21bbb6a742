//! The live progress bar (stderr, only on a terminal and without --quiet).

use std::io::IsTerminal;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::{Live, Stop};

pub struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// `None` when stderr is not a terminal or `quiet`.
    /// `item`: what the signal's items are called (spans, data points, log records).
    pub fn start(
        live: Arc<Live>,
        stop: Stop,
        spans_per_request: u64,
        item: &'static str,
        quiet: bool,
    ) -> Option<Self> {
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let (len, unit) = match stop {
            Stop::After(d) => (d.as_millis() as u64, "ms"),
            Stop::Requests(n) => (n.saturating_mul(spans_per_request), item),
        };
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(4));
        let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        let b = bar.clone();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let (mut last_t, mut last_spans) = (start, 0u64);
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                let now = Instant::now();
                let sent = live.spans_sent.load(Relaxed);
                let dt = now.duration_since(last_t).as_secs_f64().max(1e-3);
                let rate = (sent - last_spans.min(sent)) as f64 / dt;
                (last_t, last_spans) = (now, sent);
                b.set_position(if unit == "ms" {
                    now.duration_since(start).as_millis() as u64
                } else {
                    sent
                });
                b.set_message(format!(
                    "{sent} {item} sent, {:.0} {item}/s, {} ok, {} refused",
                    rate,
                    live.spans_accepted.load(Relaxed),
                    live.spans_refused.load(Relaxed)
                ));
            }
        });
        Some(Self { bar, task })
    }

    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
