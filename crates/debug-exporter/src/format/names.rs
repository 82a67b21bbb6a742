//! Enum names as pdata's `String()` methods give them; an unknown number prints as nothing.

use opentelemetry_proto::tonic::metrics::v1::metric;

pub fn span_kind(kind: i32) -> &'static str {
    const NAMES: [&str; 6] = [
        "Unspecified",
        "Internal",
        "Server",
        "Client",
        "Producer",
        "Consumer",
    ];
    name(&NAMES, kind)
}

pub fn status_code(code: i32) -> &'static str {
    name(&["Unset", "Ok", "Error"], code)
}

pub fn temporality(t: i32) -> &'static str {
    name(&["Unspecified", "Delta", "Cumulative"], t)
}

pub fn severity(n: i32) -> &'static str {
    const NAMES: [&str; 25] = [
        "Unspecified",
        "Trace",
        "Trace2",
        "Trace3",
        "Trace4",
        "Debug",
        "Debug2",
        "Debug3",
        "Debug4",
        "Info",
        "Info2",
        "Info3",
        "Info4",
        "Warn",
        "Warn2",
        "Warn3",
        "Warn4",
        "Error",
        "Error2",
        "Error3",
        "Error4",
        "Fatal",
        "Fatal2",
        "Fatal3",
        "Fatal4",
    ];
    name(&NAMES, n)
}

pub fn data_type(data: Option<&metric::Data>) -> &'static str {
    match data {
        None => "Empty",
        Some(metric::Data::Gauge(_)) => "Gauge",
        Some(metric::Data::Sum(_)) => "Sum",
        Some(metric::Data::Histogram(_)) => "Histogram",
        Some(metric::Data::ExponentialHistogram(_)) => "ExponentialHistogram",
        Some(metric::Data::Summary(_)) => "Summary",
    }
}

fn name(names: &[&'static str], n: i32) -> &'static str {
    usize::try_from(n)
        .ok()
        .and_then(|i| names.get(i))
        .copied()
        .unwrap_or("")
}
