//! `loadgen run`: generate, send, report, verify.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::cli::RunArgs;
use crate::encode::Template;
use crate::engine::{self, Live, Pacing, Plan, Retry, Stop};
use crate::model::{Generator, ModelConfig};
use crate::progress::Progress;
use crate::report::{Collector, Count, Latency, Report, SinkCheck, VerifyReport};
use crate::send::{normalize_endpoint, Conn, Target};
use crate::signal::Signal;
use crate::sink::{Sink, SinkConfig, SinkCounts};
use crate::tally::{self, Tally, TallySpec};
use crate::templates::prepare;
use crate::verify::{self, Expected, Names, Scrape};
use crate::{expo, httpget, procstat};

/// Runs `loadgen run`; returns whether every check passed.
pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let model = model_config(&args);
    let nonce = args.nonce.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos() ^ d.as_secs() as u32)
    });
    let generator = Generator::new(model, nonce).context("invalid trace model")?;
    let spec = TallySpec {
        dimensions: args.verify.dimensions.clone(),
        buckets: match args.verify.histogram_unit {
            tally::Unit::Ms => args.verify.buckets.clone(),
            tally::Unit::S => args.verify.buckets.iter().map(|b| b / 1000.0).collect(),
        },
        unit: args.verify.histogram_unit,
    };
    if args.templates == 0 || args.connections == 0 || args.concurrency == 0 {
        bail!("--templates, --connections and --concurrency must be at least 1");
    }

    // Everything is encoded before the clock starts.
    let t0 = Instant::now();
    let base_time_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let signal = args.signal;
    let traces = signal == Signal::Traces;
    if matches!(
        args.protocol,
        crate::send::Protocol::Zipkin
            | crate::send::Protocol::Jaeger
            | crate::send::Protocol::JaegerGrpc
    ) && !traces
    {
        bail!(
            "--protocol zipkin, jaeger and jaeger-grpc send spans: they take --signal traces only"
        );
    }
    if args.protocol == crate::send::Protocol::Fluent && signal != Signal::Logs {
        bail!("--protocol fluent sends log records: it takes --signal logs only");
    }
    let tally_spec = (traces && args.verify.verify).then_some(&spec);
    let prepared = prepare(signal, &generator, args.templates, base_time_ns, tally_spec)?;
    let (templates, contributions) = (prepared.templates, prepared.contributions);
    let bytes: usize = templates.iter().map(Template::len).sum();
    let items: usize = templates.iter().map(Template::items).sum();
    // The same for every traces template; metrics and logs templates vary a little.
    let items_per_request = items as f64 / templates.len() as f64;
    let spans_per_request = items_per_request.round() as usize;
    let bytes_per_request = bytes as f64 / templates.len() as f64;
    if !args.quiet {
        eprintln!(
            "loadgen: {} {} requests pre-encoded in {:.0?} ({:.0} bytes and {:.1} {} each, {:.0} bytes per item)",
            templates.len(),
            signal.name(),
            t0.elapsed(),
            bytes_per_request,
            items_per_request,
            signal.items(),
            bytes_per_request / items_per_request.max(1.0)
        );
    }
    if args.verify.verify && !traces && args.sink.is_none() && args.verify.sink_count_url.is_none()
    {
        bail!(
            "--verify with --signal {} checks the sink: give --sink or --sink-count-url",
            signal.name()
        );
    }
    let templates = Arc::new(templates);

    let sink = match args.sink {
        Some(listen) => {
            let sink = Sink::start(SinkConfig {
                listen,
                check: args.sink_check,
                ..Default::default()
            })
            .await
            .with_context(|| format!("starting the sink on {listen}"))?;
            if !args.quiet {
                eprintln!("loadgen: sink listening on {}", sink.addr);
            }
            Some(sink)
        }
        None => None,
    };
    let endpoint = match (&sink, args.endpoint.as_str()) {
        (Some(_), "sink") if args.protocol != crate::send::Protocol::Grpc => {
            bail!("the in-process sink speaks OTLP/gRPC only")
        }
        (Some(s), "sink") => format!("http://{}", s.addr),
        (None, "sink") => bail!("--endpoint sink needs --sink ADDR"),
        (_, e) => normalize_endpoint(e),
    };
    let target = Target {
        endpoint: endpoint.clone(),
        protocol: args.protocol,
        gzip: args.gzip,
        timeout: args.timeout,
        signal,
        headers: args.headers.iter().cloned().collect(),
    };
    let mut conns = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        conns.push(Conn::connect(&target).await?);
    }

    let names = Names::new(&args.verify.namespace, spec.unit);
    let sink_url = args.verify.sink_count_url.clone();
    let (baseline, sink_base) = if args.verify.verify {
        let baseline = if args.verify.no_baseline || !traces {
            Scrape::default()
        } else {
            scrape(&args.verify.metrics_url, &names, &args.verify.ignore_labels)
                .await
                .context(
                    "baseline scrape before sending (is the collector's Prometheus endpoint up?)",
                )?
        };
        let sink_base = sink_counts(sink.as_ref(), sink_url.as_deref()).await?;
        (baseline, sink_base)
    } else {
        (Scrape::default(), None)
    };

    let per_request = items_per_request.max(1.0);
    let stop = match (args.duration, args.spans, args.requests) {
        (_, _, Some(n)) => Stop::Requests(n),
        (_, Some(spans), _) => Stop::Requests((spans as f64 / per_request).ceil() as u64),
        (Some(d), None, None) => Stop::After(d),
        (None, None, None) => Stop::After(Duration::from_secs(10)),
    };
    let plan = Plan {
        rate_rps: args.rate.map(|r| r / per_request),
        stop,
        connections: args.connections,
        concurrency: args.concurrency,
        retry: Retry {
            retries: args.retries,
            backoff: args.backoff,
        },
        pacing: Pacing::Thread,
    };
    let live = Arc::new(Live::new(templates.len()));
    let cpu0 = args.pid.map(procstat::cpu_seconds).transpose()?;
    let self_cpu0 = procstat::cpu_seconds(std::process::id()).ok();
    let progress = Progress::start(
        live.clone(),
        stop,
        spans_per_request as u64,
        signal.items(),
        args.quiet,
    );
    let elapsed = engine::run(plan, templates.clone(), conns, live.clone(), base_time_ns).await;
    let cpu1 = args.pid.map(procstat::cpu_seconds).transpose()?;
    let self_cpu1 = procstat::cpu_seconds(std::process::id()).ok();
    if let Some(p) = progress {
        p.finish();
    }

    let mut report = build_report(
        &args,
        &endpoint,
        spans_per_request,
        bytes_per_request,
        elapsed,
        &live,
    );
    report.nonce = generator.nonce();
    report.model = Some(generator.config().clone());
    report.signal = signal;
    report.item = signal.items();
    let accepted_bytes: u64 = templates
        .iter()
        .zip(&live.accepted_per_template)
        .map(|(t, n)| t.len() as u64 * n.load(Relaxed))
        .sum();
    report.accepted_bytes = accepted_bytes;
    report.loadgen_cpu_seconds = self_cpu0.zip(self_cpu1).map(|(a, b)| b - a);
    if let (Some(pid), Some(c0), Some(c1)) = (args.pid, cpu0, cpu1) {
        let cpu = c1 - c0;
        let spans = report.accepted.spans as f64;
        report.collector = Some(Collector {
            pid,
            cpu_seconds: cpu,
            peak_rss_bytes: procstat::peak_rss_bytes(pid).unwrap_or(0),
            cpu_seconds_per_million_spans: if spans > 0.0 { cpu / spans * 1e6 } else { 0.0 },
            spans_per_cpu_second: if cpu > 0.0 { spans / cpu } else { 0.0 },
        });
    }

    let mut ok = true;
    if args.verify.verify && !traces {
        let direct = args.endpoint == "sink";
        let v = crate::verify_sink::settle(
            signal,
            &report,
            accepted_bytes,
            direct,
            sink.as_ref(),
            sink_url.as_deref(),
            sink_base.unwrap_or_default(),
            args.verify.settle_timeout,
        )
        .await?;
        ok = v.ok;
        report.verify = Some(v);
    } else if args.verify.verify {
        let mut tally = Tally::default();
        for (c, n) in contributions.iter().zip(&live.accepted_per_template) {
            tally.add(c, n.load(Relaxed));
        }
        let services: HashSet<String> = generator.service_names().into_iter().collect();
        let expected = Expected::new(&spec, &tally, services);
        let v = settle(
            &args,
            &names,
            &expected,
            &baseline,
            sink.as_ref(),
            sink_url.as_deref(),
            sink_base,
            &report,
        )
        .await?;
        ok = v.ok;
        report.verify = Some(v);
    }
    if let Some(s) = &sink {
        report.sink = Some(s.counts());
    }
    output(&args, &report)?;
    if let Some(s) = sink {
        s.stop().await;
    }
    Ok(ok)
}

fn model_config(args: &RunArgs) -> ModelConfig {
    let m = &args.model;
    ModelConfig {
        seed: m.seed,
        services: m.services,
        span_names_per_service: m.span_names,
        pods_per_service: m.pods,
        resources_per_request: m.resources_per_request,
        spans_per_request: m.spans_per_request,
        spans_per_trace: m.spans_per_trace,
        error_ratio: m.error_ratio,
        latency_median_ms: m.latency_median.as_secs_f64() * 1e3,
        latency_p99_ms: m.latency_p99.as_secs_f64() * 1e3,
        boundary_ratio: m.boundary_ratio,
        buckets_ms: args.verify.buckets.clone(),
        attributes: m.attributes,
        cache_missing_ratio: m.cache_missing_ratio,
        cache_hit_ratio: m.cache_hit_ratio,
        high_cardinality: m.high_cardinality,
        service_prefix: m.service_prefix.clone(),
        delta_metrics: m.delta_metrics,
    }
}

fn build_report(
    args: &RunArgs,
    endpoint: &str,
    spans_per_request: usize,
    bytes_per_request: f64,
    elapsed: Duration,
    live: &Live,
) -> Report {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let count = |r: &std::sync::atomic::AtomicU64, s: &std::sync::atomic::AtomicU64| Count {
        requests: r.load(Relaxed),
        spans: s.load(Relaxed),
    };
    let refused_by_status: BTreeMap<String, Count> = live
        .refused_by_status
        .lock()
        .map(|m| {
            m.iter()
                .map(|(k, (r, s))| {
                    (
                        k.clone(),
                        Count {
                            requests: *r,
                            spans: *s,
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let accepted = count(&live.requests_accepted, &live.spans_accepted);
    let open = args.rate.is_some();
    Report {
        endpoint: endpoint.to_owned(),
        protocol: format!("{:?}", args.protocol).to_lowercase(),
        mode: if open {
            "fixed rate (open loop)"
        } else {
            "full speed (closed loop)"
        }
        .into(),
        target_spans_per_second: args.rate,
        connections: args.connections,
        concurrency: args.concurrency,
        spans_per_request,
        templates: args.templates,
        bytes_per_request,
        elapsed_seconds: elapsed.as_secs_f64(),
        sent: count(&live.requests_sent, &live.spans_sent),
        accepted,
        refused: count(&live.requests_refused, &live.spans_refused),
        refused_by_status,
        uncertain_requests: live.uncertain_requests.load(Relaxed),
        retries: live.retries.load(Relaxed),
        rejected_spans: live.rejected_spans.load(Relaxed),
        spans_per_second: accepted.spans as f64 / secs,
        requests_per_second: accepted.requests as f64 / secs,
        latency: Latency::from_histogram(
            &live.latency_snapshot(),
            if open { "intended" } else { "send" },
        ),
        max_dispatch_lag_ms: open.then(|| live.max_dispatch_lag_us.load(Relaxed) as f64 / 1e3),
        ..Default::default()
    }
}

async fn scrape(url: &str, names: &Names, ignore: &[String]) -> anyhow::Result<Scrape> {
    let body = httpget::get(url, Duration::from_secs(10)).await?;
    let text = std::str::from_utf8(&body).context("the exposition is not UTF-8")?;
    let samples = expo::parse(text).with_context(|| format!("parsing {url}"))?;
    Ok(Scrape::new(samples, names, ignore))
}

pub(crate) async fn sink_counts(
    sink: Option<&Sink>,
    url: Option<&str>,
) -> anyhow::Result<Option<SinkCounts>> {
    if let Some(s) = sink {
        return Ok(Some(s.counts()));
    }
    let Some(url) = url else {
        return Ok(None);
    };
    let body = httpget::get(url, Duration::from_secs(10)).await?;
    Ok(Some(serde_json::from_slice(&body).with_context(|| {
        format!("reading sink counts from {url}")
    })?))
}

/// Polls until the collector (and the sink) show exactly the tally, or the settle timeout.
#[allow(clippy::too_many_arguments)]
async fn settle(
    args: &RunArgs,
    names: &Names,
    expected: &Expected,
    baseline: &Scrape,
    sink: Option<&Sink>,
    sink_url: Option<&str>,
    sink_base: Option<SinkCounts>,
    report: &Report,
) -> anyhow::Result<VerifyReport> {
    let va = &args.verify;
    let started = Instant::now();
    let deadline = started + va.settle_timeout;
    let sink_expected = report.accepted.spans.saturating_sub(report.rejected_spans);
    let mut notes = Vec::new();
    loop {
        let current = match scrape(&va.metrics_url, names, &va.ignore_labels).await {
            Ok(s) => Some(s),
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "scrape failed; retrying");
                None
            }
            Err(e) => return Err(e.context("scraping after the run")),
        };
        let sink_check = match sink_counts(sink, sink_url).await {
            Ok(Some(now)) => {
                let base = sink_base.unwrap_or_default();
                let received = now.spans.saturating_sub(base.spans);
                Some(SinkCheck {
                    signal: Signal::Traces,
                    received_spans: received,
                    expected_spans: sink_expected,
                    received_requests: now.requests.saturating_sub(base.requests),
                    expected_requests: None,
                    received_bytes: now.bytes.saturating_sub(base.bytes),
                    accepted_bytes: None,
                    counts: now,
                    ok: received == sink_expected && now.duplicate_ids == base.duplicate_ids,
                })
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "reading sink counts failed");
                None
            }
        };
        if let Some(current) = current {
            let verdict = verify::compare(expected, names, baseline, &current, va.max_mismatches);
            let sink_ok = sink_check.as_ref().is_none_or(|s| s.ok);
            let done = verdict.ok() && sink_ok;
            if done || Instant::now() >= deadline {
                if report.uncertain_requests > 0 {
                    notes.push(format!(
                        "{} requests timed out or lost their connection: the collector may have counted them",
                        report.uncertain_requests
                    ));
                }
                if report.rejected_spans > 0 {
                    notes.push(format!(
                        "the collector rejected {} spans in partial_success; loadgen never sends invalid spans",
                        report.rejected_spans
                    ));
                }
                if va.no_baseline {
                    notes.push(
                        "no baseline: absolute values compared (needs a fresh collector)".into(),
                    );
                }
                if !done {
                    notes.push(format!(
                        "counts did not settle within {:?}",
                        va.settle_timeout
                    ));
                }
                return Ok(VerifyReport {
                    ok: done && report.rejected_spans == 0,
                    metrics_url: va.metrics_url.clone(),
                    baseline: !va.no_baseline,
                    settle_seconds: started.elapsed().as_secs_f64(),
                    expected_spans: expected.spans,
                    expected_errors: expected.errors_total,
                    counted_spans: verdict.counted_spans.max(0.0) as u64,
                    counted_errors: verdict.counted_errors.max(0.0) as u64,
                    verdict,
                    sink: sink_check,
                    notes,
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn output(args: &RunArgs, report: &Report) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    match args.json.as_deref() {
        Some("-") => {
            if !args.quiet {
                eprint!("{}", report.table());
            }
            println!("{json}");
        }
        Some(path) => {
            std::fs::write(path, json + "\n").with_context(|| format!("writing {path}"))?;
            if !args.quiet {
                print!("{}", report.table());
            }
        }
        None => {
            if !args.quiet {
                print!("{}", report.table());
            }
        }
    }
    // A failed verification is reported even with --quiet.
    if args.quiet {
        if let Some(v) = report.verify.as_ref().filter(|v| !v.ok) {
            for m in &v.verdict.mismatches {
                eprintln!("mismatch: {m}");
            }
            for n in &v.notes {
                eprintln!("note: {n}");
            }
        }
    }
    Ok(())
}
