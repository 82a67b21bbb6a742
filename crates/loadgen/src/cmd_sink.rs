//! `loadgen sink`: serve until SIGINT/SIGTERM, then print the final counts.

use std::time::Duration;

use anyhow::Context;

use crate::cli::SinkArgs;
use crate::sink::{Sink, SinkConfig};

pub async fn run(args: SinkArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.fail_ratio) {
        anyhow::bail!("--fail-ratio must be within [0, 1]");
    }
    let sink = Sink::start(SinkConfig {
        listen: args.listen,
        count_listen: args.count_listen,
        fail_ratio: args.fail_ratio,
        delay: args.delay,
        check: args.check,
        check_max_ids: args.check_max_ids,
        seed: 1,
    })
    .await
    .with_context(|| format!("binding {} / {:?}", args.listen, args.count_listen))?;
    match sink.count_addr {
        Some(c) => eprintln!(
            "loadgen sink: OTLP/gRPC on {}, counts on http://{c}/count",
            sink.addr
        ),
        None => eprintln!("loadgen sink: OTLP/gRPC on {}", sink.addr),
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let every = if args.report_interval.is_zero() {
        Duration::from_secs(86_400 * 365)
    } else {
        args.report_interval
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut last = sink.counts();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tick.tick() => {
                let c = sink.counts();
                if c != last {
                    eprintln!(
                        "loadgen sink: {} spans in {} requests ({:.0} spans/s), {} refused, {} malformed, {} duplicate ids",
                        c.spans, c.requests,
                        (c.spans - last.spans) as f64 / every.as_secs_f64(),
                        c.refused_requests, c.malformed_requests, c.duplicate_ids
                    );
                    last = c;
                }
            }
        }
    }
    let counts = sink.counts();
    sink.stop().await;
    let json = serde_json::to_string(&counts)?;
    eprintln!("loadgen sink: final {json}");
    match args.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => println!("{json}"),
        Some(p) => {
            std::fs::write(p, json + "\n").with_context(|| format!("writing {}", p.display()))?
        }
        None => {}
    }
    Ok(())
}
