//! Compiled statement groups and condition sets, and how one item is run through them with
//! otelcol's error modes.

mod filter;
mod filter_metrics;
mod infer_conditions;
mod item;
mod logs;
mod metrics;
mod name_memo;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_metrics;
#[cfg(test)]
mod tests_metrics_filter;
#[cfg(test)]
mod tests_points;
mod traces;

pub use filter::{
    any_span_matches, filter_logs, filter_traces, traces_may_drop, FilterOutcome, LogFilters,
    TraceFilters,
};
pub use filter_metrics::{filter_metrics, MetricFilters};
pub use item::{Item, ItemScope};

use serde::Deserialize;

use crate::ast;
use crate::compile::{Compiler, Prefixes};
use crate::error::{CompileError, EvalError, ExecError};
use crate::eval::{eval_cond, Reader};
use crate::funcs::{apply_editor, editor_would_change};
use crate::infer::Hints;
use crate::ir::{Action, CCondition, CStatement};
use crate::parse_shim;
use crate::paths::{ContextKind, Signal};
use crate::write::Writer;

/// What a runtime error in a statement or condition does (otelcol's `error_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorMode {
    /// Log a warning and go on with the next statement.
    Ignore,
    /// Go on with the next statement without logging.
    Silent,
    /// Stop and return the error.
    #[default]
    Propagate,
}

/// Statements of one context with the group's optional `conditions` (ORed): a compiled
/// `trace_statements`/`log_statements`/`metric_statements` entry of the transform processor.
#[derive(Debug)]
pub struct StatementGroup {
    context: ContextKind,
    statements: Vec<CStatement>,
    conditions: Vec<CCondition>,
    error_mode: ErrorMode,
    /// Span names the traces dry run found unchanged.
    names: name_memo::NameMemo,
}

/// Conditions of one context, ORed: an item matching any of them is dropped by the filter
/// processor.
#[derive(Debug)]
pub struct ConditionSet {
    context: ContextKind,
    conditions: Vec<CCondition>,
    error_mode: ErrorMode,
}

/// Parses every text, reporting all failures.
fn parse_all<T>(
    texts: &[String],
    parse: fn(&str) -> Result<T, CompileError>,
    errors: &mut Vec<CompileError>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(texts.len());
    for t in texts {
        match parse(t) {
            Ok(v) => out.push(v),
            Err(e) => errors.push(e),
        }
    }
    out
}

fn compile_all<A, T>(
    texts: &[String],
    trees: &[A],
    context: ContextKind,
    prefixes: Prefixes,
    compile: impl Fn(&Compiler<'_>, &A) -> Result<T, CompileError>,
    errors: &mut Vec<CompileError>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(trees.len());
    for (text, tree) in texts.iter().zip(trees) {
        match compile(&Compiler::new(text, context, prefixes), tree) {
            Ok(v) => out.push(v),
            Err(e) => errors.push(e),
        }
    }
    out
}

impl StatementGroup {
    /// Compiles a group. `context: None` infers it from the path prefixes (then every path
    /// must carry one); with a context, paths without prefix belong to it. All errors are
    /// returned, not only the first.
    pub fn compile(
        context: Option<ContextKind>,
        signal: Signal,
        statements: &[String],
        conditions: &[String],
        error_mode: ErrorMode,
    ) -> Result<Self, Vec<CompileError>> {
        let mut errors = Vec::new();
        let stmt_trees = parse_all(statements, parse_shim::statement, &mut errors);
        let cond_trees = parse_all(conditions, parse_shim::condition, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Self::compile_trees(
            context,
            signal,
            statements,
            &stmt_trees,
            conditions,
            &cond_trees,
            error_mode,
        )
    }

    /// [`StatementGroup::compile`] on already parsed trees (texts give the error messages).
    pub fn compile_trees(
        context: Option<ContextKind>,
        signal: Signal,
        statement_texts: &[String],
        statements: &[ast::Statement],
        condition_texts: &[String],
        conditions: &[ast::BoolExpr],
        error_mode: ErrorMode,
    ) -> Result<Self, Vec<CompileError>> {
        let (context, prefixes) = match context {
            Some(c) => {
                if !ContextKind::of_signal(signal).contains(&c) {
                    let text = statement_texts.first().cloned().unwrap_or_default();
                    return Err(vec![CompileError::new(
                        &text,
                        1,
                        format!("context {} is not available for {signal:?}", c.name()),
                    )]);
                }
                (c, Prefixes::Optional)
            }
            None => {
                let mut hints = Hints::default();
                statements.iter().for_each(|s| hints.statement(s));
                conditions.iter().for_each(|c| hints.cond(c));
                match hints.infer(signal) {
                    Ok(c) => (c, Prefixes::Required),
                    Err(message) => {
                        let text = statement_texts.join("; ");
                        return Err(vec![CompileError::new(&text, 1, message)]);
                    }
                }
            }
        };
        let mut errors = Vec::new();
        let statements = compile_all(
            statement_texts,
            statements,
            context,
            prefixes,
            |c, s| c.statement(s),
            &mut errors,
        );
        let conditions = compile_all(
            condition_texts,
            conditions,
            context,
            prefixes,
            |c, s| c.condition(s),
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            context,
            statements,
            conditions,
            error_mode,
            names: name_memo::NameMemo::default(),
        })
    }

    pub fn context(&self) -> ContextKind {
        self.context
    }

    /// The statements as written.
    pub fn statement_texts(&self) -> Vec<&str> {
        self.statements.iter().map(|s| s.text.as_str()).collect()
    }

    pub fn error_mode(&self) -> ErrorMode {
        self.error_mode
    }

    /// Runs the group on one item; `Ok(true)` when an editor ran.
    pub(crate) fn run_item<W: Writer + ?Sized>(&self, w: &mut W) -> Result<bool, ExecError> {
        if !conditions_match(&self.conditions, self.error_mode, &*w)? {
            return Ok(false);
        }
        let mut ran = false;
        for st in &self.statements {
            match run_statement(w, st) {
                Ok(edited) => ran |= edited,
                Err(e) => match self.error_mode {
                    ErrorMode::Propagate => {
                        return Err(ExecError::Statement {
                            statement: st.text.clone(),
                            source: e,
                        })
                    }
                    ErrorMode::Ignore => {
                        tracing::warn!(statement = %st.text, error = %e, "failed to execute statement");
                    }
                    ErrorMode::Silent => {}
                },
            }
        }
        Ok(ran)
    }

    /// Whether running the group on this item could change it. An error that the real run
    /// would return or log counts as a change, so the real run happens and reports it.
    pub(crate) fn item_may_change<R: Reader + ?Sized>(&self, r: &R) -> bool {
        if !self.conditions.is_empty() {
            let mut matched = false;
            for c in &self.conditions {
                match eval_cond(r, &c.cond) {
                    Ok(true) => {
                        matched = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(_) if self.error_mode == ErrorMode::Silent => {}
                    // The real run would return or log it.
                    Err(_) => return true,
                }
            }
            if !matched {
                return false;
            }
        }
        for st in &self.statements {
            match statement_may_change(r, st) {
                Ok(false) => {}
                Ok(true) => return true,
                Err(_) if self.error_mode == ErrorMode::Silent => {}
                Err(_) => return true,
            }
        }
        false
    }
}

fn run_statement<W: Writer + ?Sized>(w: &mut W, st: &CStatement) -> Result<bool, EvalError> {
    if let Some(c) = &st.condition {
        if !eval_cond(&*w, c)? {
            return Ok(false);
        }
    }
    match &st.action {
        Action::Editor(e) => apply_editor(w, e).map(|()| true),
    }
}

fn statement_may_change<R: Reader + ?Sized>(r: &R, st: &CStatement) -> Result<bool, EvalError> {
    if let Some(c) = &st.condition {
        if !eval_cond(r, c)? {
            return Ok(false);
        }
    }
    match &st.action {
        Action::Editor(e) => editor_would_change(r, e),
    }
}

/// otelcol's `ConditionSequence.Eval` with OR: the first match wins; errors follow the mode.
/// No conditions means every item matches (the transform processor's default).
fn conditions_match<R: Reader + ?Sized>(
    conditions: &[CCondition],
    mode: ErrorMode,
    r: &R,
) -> Result<bool, ExecError> {
    if conditions.is_empty() {
        return Ok(true);
    }
    any_condition(conditions, mode, r)
}

fn any_condition<R: Reader + ?Sized>(
    conditions: &[CCondition],
    mode: ErrorMode,
    r: &R,
) -> Result<bool, ExecError> {
    for c in conditions {
        match eval_cond(r, &c.cond) {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) => match mode {
                ErrorMode::Propagate => {
                    return Err(ExecError::Condition {
                        condition: c.text.clone(),
                        source: e,
                    })
                }
                ErrorMode::Ignore => {
                    tracing::warn!(condition = %c.text, error = %e, "failed to eval condition");
                }
                ErrorMode::Silent => {}
            },
        }
    }
    Ok(false)
}

impl ConditionSet {
    /// Compiles the conditions of one context (unprefixed paths belong to it).
    pub fn compile(
        context: ContextKind,
        conditions: &[String],
        error_mode: ErrorMode,
    ) -> Result<Self, Vec<CompileError>> {
        let mut errors = Vec::new();
        let trees = parse_all(conditions, parse_shim::condition, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Self::compile_trees(context, conditions, &trees, error_mode)
    }

    /// [`ConditionSet::compile`] on already parsed trees.
    pub fn compile_trees(
        context: ContextKind,
        texts: &[String],
        trees: &[ast::BoolExpr],
        error_mode: ErrorMode,
    ) -> Result<Self, Vec<CompileError>> {
        let mut errors = Vec::new();
        let conditions = compile_all(
            texts,
            trees,
            context,
            Prefixes::Optional,
            |c, s| c.condition(s),
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            context,
            conditions,
            error_mode,
        })
    }

    pub fn context(&self) -> ContextKind {
        self.context
    }

    /// Whether the item matches (is to be dropped).
    pub(crate) fn matches<R: Reader + ?Sized>(&self, r: &R) -> Result<bool, ExecError> {
        any_condition(&self.conditions, self.error_mode, r)
    }

    /// Dry run: `true` when the item matches, or when evaluating it hits an error the real
    /// run would return or log.
    pub(crate) fn may_match<R: Reader + ?Sized>(&self, r: &R) -> bool {
        self.conditions.iter().any(|c| match eval_cond(r, &c.cond) {
            Ok(m) => m,
            Err(_) => self.error_mode != ErrorMode::Silent,
        })
    }
}
