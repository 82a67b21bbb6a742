//! otelcol's `--feature-gates`, so that a command line written for otelcol-contrib runs
//! unchanged where Redline behaves as the gates ask, and is refused, naming the gate, where it
//! does not. The gates are those of otelcol-contrib v0.161.0's components that Redline has.

use redline_pipeline::config::{ConfigError, ListMerge};
use redline_pipeline::host::FeatureGate;

const FLAG: &str = "--feature-gates";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Alpha,
    Beta,
    Stable,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Alpha => "Alpha",
            Beta => "Beta",
            Stable => "Stable",
        }
    }
}

/// What Redline does whatever a gate says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Redline {
    /// As otelcol with the gate at its default; the other state is refused.
    AsDefault,
    /// As otelcol with the gate disabled, whatever its default (docs/compatibility.md says
    /// where that differs from otelcol's default).
    AsDisabled,
    /// Nothing Redline does depends on it (internal memory pools, config reloads, workers).
    Unaffected,
    /// Redline does what either state asks; [`Gates`] carries the state.
    Honoured,
}

impl Redline {
    fn explained(self) -> &'static str {
        match self {
            AsDefault => "Redline behaves as otelcol with the gate at its default; the other state is refused",
            AsDisabled => "Redline always behaves as with the gate disabled",
            Unaffected => "nothing Redline does depends on it",
            Honoured => "Redline does what either state asks",
        }
    }
}

/// What the command line's gates ask of Redline, and the warnings they gave.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Gates {
    /// `confmap.enableMergeAppendOption`.
    pub list_merge: ListMerge,
    pub warnings: Vec<String>,
    /// Every gate Redline knows, in the state the command line left it (for `zpages`).
    pub table: Vec<FeatureGate>,
}

const MERGE_APPEND: &str = "confmap.enableMergeAppendOption";

struct Gate {
    id: &'static str,
    stage: Stage,
    enabled_by_default: bool,
    redline: Redline,
}

const fn gate(id: &'static str, stage: Stage, on: bool, redline: Redline) -> Gate {
    Gate {
        id,
        stage,
        enabled_by_default: on,
        redline,
    }
}

use Redline::{AsDefault, AsDisabled, Honoured, Unaffected};
use Stage::{Alpha, Beta, Stable};

#[rustfmt::skip]
const GATES: &[Gate] = &[
    gate(MERGE_APPEND, Alpha, false, Honoured),
    gate("connector.spanmetrics.excludeResourceMetrics", Alpha, false, AsDefault),
    gate("connector.spanmetrics.includeCollectorInstanceID", Beta, true, AsDisabled),
    gate("connector.spanmetrics.legacyMetricNames", Alpha, false, AsDefault),
    gate("connector.spanmetrics.useSecondAsDefaultMetricsUnit", Alpha, false, AsDefault),
    gate("exporter.prometheus.DisableResourceToTelemetryConversion", Alpha, false, AsDefault),
    gate("exporter.prometheusexporter.DisableAddMetricSuffixes", Beta, true, AsDefault),
    gate("exporter.prometheusremotewrite.DisableResourceToTelemetryConversion", Alpha, false, AsDefault),
    gate("exporter.prometheusremotewritexporter.EnableMultipleWorkers", Alpha, false, Unaffected),
    gate("exporter.prometheusremotewritexporter.RetryOn429", Alpha, false, AsDefault),
    gate("exporter.prometheusremotewritexporter.enableSendingRW2", Alpha, false, AsDefault),
    gate("exporter.prometheusremotewritexporter.removeTopLevelHTTPSettings", Alpha, false, AsDefault),
    gate("extension.healthcheck.useComponentStatus", Alpha, false, AsDefault),
    gate("filter.filterlog.useOTTLBridge", Alpha, false, AsDefault),
    gate("filter.filtermetric.useOTTLBridge", Alpha, false, AsDefault),
    gate("filter.filterspan.useOTTLBridge", Alpha, false, AsDefault),
    gate("ottl.PanicDuplicateName", Stable, true, AsDefault),
    gate("ottl.contexts.enableOTelColContext", Stable, true, AsDefault),
    gate("ottl.functions.enableLambda", Alpha, false, AsDefault),
    gate("ottl.set.allowNil", Beta, true, AsDefault),
    gate("pdata.useProtoPooling", Alpha, false, Unaffected),
    gate("pkg.exporterhelper.queueBatchEnabled", Alpha, false, AsDefault),
    gate("pkg.translator.prometheus.PermissiveLabelSanitization", Alpha, false, AsDefault),
    gate("processor.filter.defaultErrorModeIgnore", Stable, true, AsDefault),
    gate("processor.transform.defaultErrorModeIgnore", Stable, true, AsDefault),
    gate("receiverhelper.newReceiverMetrics", Alpha, false, AsDefault),
    gate("service.AllowNoPipelines", Alpha, false, AsDefault),
    gate("service.partialReload", Alpha, false, Unaffected),
    gate("service.partialReloadReceivers", Beta, true, Unaffected),
    gate("service.profilesSupport", Alpha, false, AsDefault),
    gate("spanmetrics.statusCodeConvention.useOtelPrefix", Alpha, false, AsDefault),
    gate("telemetry.newPipelineTelemetry", Alpha, false, AsDefault),
    gate("transform.flatten.logs", Alpha, false, AsDefault),
];

/// Checks every `--feature-gates` value (comma-separated ids, each `id` or `+id` to enable,
/// `-id` to disable; the last setting of a gate counts). Returns what the gates ask and what
/// is worth a warning (gates Redline does not know), or every gate it cannot honour.
pub(crate) fn check(values: &[String]) -> Result<Gates, Vec<ConfigError>> {
    let mut gates = Gates::default();
    let mut errors = Vec::new();
    let mut set: Vec<(&'static str, bool)> = Vec::new();
    for item in values.iter().flat_map(|v| v.split(',')).map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let (id, enable) = match (item.strip_prefix('-'), item.strip_prefix('+')) {
            (Some(id), _) => (id, false),
            (_, Some(id)) => (id, true),
            _ => (item, true),
        };
        let Some(gate) = GATES.iter().find(|g| g.id == id) else {
            gates.warnings.push(format!(
                "{FLAG}: `{id}` is not a gate of any component Redline has; ignored"
            ));
            continue;
        };
        if let Some(reason) = refusal(gate, enable) {
            errors.push(ConfigError::new(None, None, FLAG.to_owned(), reason));
        }
        set.push((gate.id, enable));
        if id == MERGE_APPEND {
            gates.list_merge = if enable {
                ListMerge::AppendComponentLists
            } else {
                ListMerge::Replace
            };
        }
    }
    if errors.is_empty() {
        gates.table = table(&set);
        Ok(gates)
    } else {
        Err(errors)
    }
}

/// Every gate in the state Redline runs it: the command line's last setting, or what Redline
/// does without one (a gate Redline always runs disabled shows disabled).
fn table(set: &[(&'static str, bool)]) -> Vec<FeatureGate> {
    GATES
        .iter()
        .map(|g| {
            let asked = set
                .iter()
                .rev()
                .find(|(id, _)| *id == g.id)
                .map(|(_, on)| *on);
            let enabled = match g.redline {
                AsDisabled => false,
                _ => asked.unwrap_or(g.enabled_by_default),
            };
            FeatureGate {
                id: g.id,
                enabled,
                stage: g.stage.name(),
                redline: g.redline.explained(),
            }
        })
        .collect()
}

/// Why `gate` cannot be set to `enable`, if it cannot.
fn refusal(gate: &Gate, enable: bool) -> Option<String> {
    let id = gate.id;
    if gate.stage == Stable && !enable {
        // otelcol's own rule.
        return Some(format!(
            "feature gate `{id}` is stable and cannot be disabled"
        ));
    }
    let state = |on: bool| if on { "enabled" } else { "disabled" };
    match gate.redline {
        Unaffected | Honoured => None,
        AsDisabled if !enable => None,
        AsDisabled => (!gate.enabled_by_default)
            .then(|| format!("feature gate `{id}`: Redline always behaves as with it disabled")),
        AsDefault if enable == gate.enabled_by_default => None,
        AsDefault => Some(format!(
            "feature gate `{id}` cannot be {}: Redline behaves as otelcol with it {} (its \
             default)",
            state(enable),
            state(gate.enabled_by_default),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gates(v: &str) -> Result<Vec<String>, Vec<String>> {
        check(&[v.to_owned()])
            .map(|g| g.warnings)
            .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn the_merge_append_gate_is_honoured_its_last_setting_counting() {
        let lists = |v: &[&str]| {
            let values: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
            check(&values).map(|g| g.list_merge)
        };
        assert_eq!(lists(&[]), Ok(ListMerge::Replace));
        assert_eq!(
            lists(&["confmap.enableMergeAppendOption"]),
            Ok(ListMerge::AppendComponentLists)
        );
        assert_eq!(
            lists(&[
                "+confmap.enableMergeAppendOption",
                "-confmap.enableMergeAppendOption"
            ]),
            Ok(ListMerge::Replace)
        );
    }

    #[test]
    fn defaults_and_what_redline_does_are_accepted() {
        assert_eq!(gates(""), Ok(vec![]));
        assert_eq!(
            gates("+exporter.prometheusexporter.DisableAddMetricSuffixes,-pdata.useProtoPooling"),
            Ok(vec![])
        );
        assert_eq!(
            gates("pdata.useProtoPooling, service.partialReload"),
            Ok(vec![])
        );
        // Redline never adds collector.instance.id: the gate's default and its disabling
        // are both taken (the default's difference is in docs/compatibility.md).
        assert_eq!(
            gates("-connector.spanmetrics.includeCollectorInstanceID"),
            Ok(vec![])
        );
        assert_eq!(
            gates("connector.spanmetrics.includeCollectorInstanceID"),
            Ok(vec![])
        );
        assert_eq!(gates("ottl.PanicDuplicateName"), Ok(vec![]));
    }

    #[test]
    fn what_redline_cannot_do_is_refused_each_by_name() {
        let errors = gates(
            "connector.spanmetrics.legacyMetricNames,-exporter.prometheusexporter.DisableAddMetricSuffixes,-processor.filter.defaultErrorModeIgnore",
        )
        .expect_err("three refusals");
        assert_eq!(
            errors,
            [
                "--feature-gates: feature gate `connector.spanmetrics.legacyMetricNames` cannot \
                 be enabled: Redline behaves as otelcol with it disabled (its default)",
                "--feature-gates: feature gate `exporter.prometheusexporter.DisableAddMetricSuffixes` \
                 cannot be disabled: Redline behaves as otelcol with it enabled (its default)",
                "--feature-gates: feature gate `processor.filter.defaultErrorModeIgnore` is \
                 stable and cannot be disabled",
            ]
        );
    }

    #[test]
    fn a_gate_of_another_component_is_a_warning() {
        assert_eq!(
            gates("-receiver.kafka.someGate"),
            Ok(vec![
                "--feature-gates: `receiver.kafka.someGate` is not a gate of any component \
                 Redline has; ignored"
                    .to_owned()
            ])
        );
    }

    #[test]
    fn the_table_shows_each_gate_as_redline_runs_it() {
        let state = |values: &[&str], id: &str| {
            let values: Vec<String> = values.iter().map(|s| (*s).to_owned()).collect();
            let gates = check(&values).expect("accepted");
            assert_eq!(gates.table.len(), GATES.len());
            let row = gates.table.iter().find(|g| g.id == id).expect("listed");
            (row.enabled, row.stage)
        };
        assert_eq!(state(&[], MERGE_APPEND), (false, "Alpha"));
        assert_eq!(
            state(&["+confmap.enableMergeAppendOption"], MERGE_APPEND),
            (true, "Alpha")
        );
        assert_eq!(state(&[], "ottl.set.allowNil"), (true, "Beta"));
        assert_eq!(
            state(
                &["-service.partialReloadReceivers"],
                "service.partialReloadReceivers"
            ),
            (false, "Beta")
        );
        // Enabled by default in otelcol; Redline always runs it disabled.
        let collector_id = "connector.spanmetrics.includeCollectorInstanceID";
        assert_eq!(state(&[], collector_id), (false, "Beta"));
    }
}
