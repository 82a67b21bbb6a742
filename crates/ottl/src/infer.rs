//! Context inference for statements written without a context (otelcol's
//! `context_inferrer.go`): the lowest context named by any path prefix, moved further down
//! when that context lacks an enum symbol the statements use.

use std::collections::BTreeSet;

use crate::ast::{self, BoolExpr, MathExpr};
use crate::paths::{ContextKind, Signal};

#[derive(Default)]
pub(crate) struct Hints {
    /// First segments read as context names (any lower-case word followed by `.`).
    contexts: Vec<String>,
    enums: BTreeSet<String>,
}

impl Hints {
    pub(crate) fn statement(&mut self, s: &ast::Statement) {
        self.call(&s.call);
        if let Some(w) = &s.where_clause {
            self.cond(w);
        }
    }

    pub(crate) fn cond(&mut self, c: &BoolExpr) {
        match c {
            BoolExpr::Or(t) | BoolExpr::And(t) => t.iter().for_each(|t| self.cond(t)),
            BoolExpr::Not(inner) => self.cond(inner),
            BoolExpr::Comparison(cmp) => {
                self.value(&cmp.left);
                self.value(&cmp.right);
            }
            BoolExpr::Literal(_) => {}
            BoolExpr::Converter(call) => self.call(call),
        }
    }

    fn call(&mut self, c: &ast::Call) {
        for a in &c.args {
            if let ast::ArgValue::Value(v) = &a.value {
                self.value(v);
            }
        }
        self.keys(&c.keys);
    }

    fn keys(&mut self, keys: &[ast::Key]) {
        for k in keys {
            if let ast::Key::Expr(v, _) = k {
                self.value(v);
            }
        }
    }

    fn value(&mut self, v: &ast::Value) {
        match v {
            ast::Value::Enum(s, _) => {
                self.enums.insert(s.clone());
            }
            ast::Value::Path(p) => {
                let named = match p.fields.as_slice() {
                    [first, _, ..] if first.keys.is_empty() => first.name.clone(),
                    _ => String::new(),
                };
                self.contexts.push(named);
                for f in &p.fields {
                    self.keys(&f.keys);
                }
            }
            ast::Value::Converter(c) | ast::Value::Editor(c) => self.call(c),
            ast::Value::List(items, _) => items.iter().for_each(|i| self.value(i)),
            ast::Value::Map(entries, _) => entries.iter().for_each(|(_, v)| self.value(v)),
            ast::Value::Math(m) => self.math(m),
            _ => {}
        }
    }

    fn math(&mut self, m: &MathExpr) {
        match m {
            MathExpr::Leaf(v) => self.value(v),
            MathExpr::Neg(inner, _) => self.math(inner),
            MathExpr::Binary { left, right, .. } => {
                self.math(left);
                self.math(right);
            }
        }
    }

    /// The inferred context, or a message saying why there is none.
    pub(crate) fn infer(&self, signal: Signal) -> Result<ContextKind, String> {
        let candidates = ContextKind::of_signal(signal);
        let names: Vec<&str> = candidates.iter().map(|c| c.name()).collect();
        // The path prefix with the best priority; unknown words rank last, as in otelcol.
        let mut best: Option<(usize, &str)> = None;
        for name in &self.contexts {
            let priority = ContextKind::from_prefix(name).map_or(usize::MAX, |c| c.priority());
            if best.is_none_or(|(p, _)| priority < p) {
                best = Some((priority, name));
            }
        }
        let Some((_, name)) = best.filter(|(_, n)| !n.is_empty()) else {
            return Err(format!(
                "unable to infer context from statements, path's first segment must be a valid context name {names:?}"
            ));
        };
        let Some(context) = ContextKind::from_prefix(name).filter(|c| candidates.contains(c))
        else {
            return Err(format!(
                "inferred context \"{name}\" is not a valid candidate, valid contexts: {names:?}"
            ));
        };
        let supports = |c: ContextKind| self.enums.iter().all(|e| c.enum_value(e).is_some());
        if supports(context) {
            return Ok(context);
        }
        // Lower contexts of the signal, best priority first.
        let mut lower: Vec<ContextKind> = candidates
            .iter()
            .copied()
            .filter(|c| c.priority() < context.priority())
            .collect();
        lower.sort_by_key(|c| c.priority());
        lower.into_iter().find(|c| supports(*c)).ok_or_else(|| {
            let missing = self
                .enums
                .iter()
                .find(|e| context.enum_value(e).is_none())
                .cloned()
                .unwrap_or_default();
            format!(
                "inferred context \"{}\" does not support the enum symbol \"{missing}\"",
                context.name()
            )
        })
    }
}
