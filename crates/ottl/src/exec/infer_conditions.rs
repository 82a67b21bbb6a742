//! Conditions whose context is inferred from their path prefixes: the filter processor's
//! `trace_conditions` / `metric_conditions` / `log_conditions` without a `context`.

use super::{parse_all, ConditionSet, ErrorMode};
use crate::error::CompileError;
use crate::infer::Hints;
use crate::parse_shim;
use crate::paths::Signal;

impl ConditionSet {
    /// Compiles `conditions` in the context their path prefixes name (the lowest one every
    /// path allows, as otelcol's inferrer picks it for `signal`).
    pub fn compile_inferred(
        signal: Signal,
        conditions: &[String],
        error_mode: ErrorMode,
    ) -> Result<Self, Vec<CompileError>> {
        let mut errors = Vec::new();
        let trees = parse_all(conditions, parse_shim::condition, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut hints = Hints::default();
        trees.iter().for_each(|c| hints.cond(c));
        let context = hints
            .infer(signal)
            .map_err(|message| vec![CompileError::new(&conditions.join("; "), 1, message)])?;
        Self::compile_trees(context, conditions, &trees, error_mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::ContextKind;

    #[test]
    fn the_prefix_names_the_context() {
        let set = ConditionSet::compile_inferred(
            Signal::Traces,
            &[
                r#"span.name == "x""#.to_owned(),
                r#"resource.attributes["a"] == "b""#.to_owned(),
            ],
            ErrorMode::Ignore,
        )
        .expect("compiles");
        assert_eq!(set.context(), ContextKind::Span);
        let errors = ConditionSet::compile_inferred(
            Signal::Traces,
            &[r#"name == "x""#.to_owned()],
            ErrorMode::Ignore,
        )
        .expect_err("no prefix, no context");
        assert!(
            errors[0].message.contains("unable to infer context"),
            "{errors:?}"
        );
    }
}
