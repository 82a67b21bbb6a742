//! The OpenTelemetry → Prometheus name translation lives in the pipeline core
//! (`redline_pipeline::prom_names`) so the remote-write exporter produces the same series
//! names and labels as this one; re-exported here under the name the renderer uses.

pub(crate) use redline_pipeline::prom_names::{
    clean_up, family_names, label_name, push_label_name, FamilyNames,
};
