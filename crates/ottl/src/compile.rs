//! Compilation of syntax trees into the executable form, once at start-up: paths resolved in
//! their context, functions looked up and their arguments bound and checked, enum symbols and
//! regexes resolved.

use crate::ast::{self, ArgValue, BoolExpr, MathExpr, Span};
use crate::error::CompileError;
use crate::funcs::build::{string_fn, Arg, Args};
use crate::funcs::{self, build_converter, build_editor, Kind, Param, SliceArg, Want};
use crate::ir::{Action, CCondition, CKey, CPath, CStatement, Cond, ConverterCall, Expr};
use crate::paths::{describe_paths, lookup, ContextKind, Field, Indexing};
use crate::value::Value;

/// How unprefixed paths are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prefixes {
    /// The context was given: a path without a context prefix belongs to it (otelcol
    /// prepends the context name).
    Optional,
    /// The context was inferred: every path must start with a context name.
    Required,
}

pub(crate) struct Compiler<'t> {
    text: &'t str,
    context: ContextKind,
    prefixes: Prefixes,
}

type CResult<T> = Result<T, CompileError>;

impl<'t> Compiler<'t> {
    pub(crate) fn new(text: &'t str, context: ContextKind, prefixes: Prefixes) -> Self {
        Self {
            text,
            context,
            prefixes,
        }
    }

    fn err(&self, span: Span, message: impl Into<String>) -> CompileError {
        CompileError::new(self.text, span.column(self.text), message)
    }

    fn source(&self, span: Span) -> &'t str {
        self.text.get(span.start..span.end).unwrap_or("")
    }

    pub(crate) fn statement(&self, s: &ast::Statement) -> CResult<CStatement> {
        let action = if s.call.is_editor() {
            Action::Editor(self.editor(&s.call)?)
        } else {
            return Err(self.err(
                s.call.name_span,
                format!(
                    "editor names must start with a lowercase letter but got '{}'",
                    s.call.name
                ),
            ));
        };
        let condition = s.where_clause.as_ref().map(|w| self.cond(w)).transpose()?;
        Ok(CStatement {
            text: self.text.to_string(),
            action,
            condition,
        })
    }

    pub(crate) fn condition(&self, c: &BoolExpr) -> CResult<CCondition> {
        Ok(CCondition {
            text: self.text.to_string(),
            cond: self.cond(c)?,
        })
    }

    fn cond(&self, c: &BoolExpr) -> CResult<Cond> {
        Ok(match c {
            BoolExpr::Or(terms) => Cond::Or(self.conds(terms)?),
            BoolExpr::And(terms) => Cond::And(self.conds(terms)?),
            BoolExpr::Not(inner) => Cond::Not(Box::new(self.cond(inner)?)),
            BoolExpr::Literal(b) => Cond::Lit(*b),
            BoolExpr::Comparison(cmp) => {
                Cond::Cmp(self.value(&cmp.left)?, cmp.op, self.value(&cmp.right)?)
            }
            BoolExpr::Converter(call) => Cond::Call(Box::new(self.converter(call)?)),
        })
    }

    fn conds(&self, terms: &[BoolExpr]) -> CResult<Vec<Cond>> {
        terms.iter().map(|t| self.cond(t)).collect()
    }

    pub(crate) fn value(&self, v: &ast::Value) -> CResult<Expr> {
        Ok(match v {
            ast::Value::Nil(_) => Expr::Literal(Value::Nil),
            ast::Value::Bool(b, _) => Expr::Literal(Value::Bool(*b)),
            ast::Value::Int(i, _) => Expr::Literal(Value::Int(*i)),
            ast::Value::Float(f, _) => Expr::Literal(Value::Double(*f)),
            ast::Value::String(s, _) => Expr::Literal(Value::string(s.clone())),
            ast::Value::Bytes(b, _) => Expr::Literal(Value::Bytes(b.clone().into())),
            ast::Value::Enum(symbol, span) => match self.context.enum_value(symbol) {
                Some(i) => Expr::Literal(Value::Int(i)),
                None => return Err(self.err(*span, format!("enum symbol, {symbol}, not found"))),
            },
            ast::Value::Path(p) => Expr::Path(Box::new(self.path(p)?)),
            ast::Value::Converter(call) => Expr::Call(Box::new(self.converter(call)?)),
            ast::Value::Editor(call) => {
                return Err(self.err(
                    call.name_span,
                    format!(
                        "converter names must start with an uppercase letter but got '{}'",
                        call.name
                    ),
                ))
            }
            ast::Value::List(items, _) => Expr::List(
                items
                    .iter()
                    .map(|i| self.value(i))
                    .collect::<CResult<_>>()?,
            ),
            ast::Value::Map(entries, _) => Expr::Map(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.value(v)?)))
                    .collect::<CResult<_>>()?,
            ),
            ast::Value::Math(m) => self.math(m)?,
        })
    }

    fn math(&self, m: &MathExpr) -> CResult<Expr> {
        Ok(match m {
            MathExpr::Leaf(v) => self.value(v)?,
            MathExpr::Neg(inner, _) => match self.math(inner)? {
                Expr::Literal(Value::Int(i)) => Expr::Literal(Value::Int(i.wrapping_neg())),
                Expr::Literal(Value::Double(d)) => Expr::Literal(Value::Double(-d)),
                other => Expr::Neg(Box::new(other)),
            },
            MathExpr::Binary {
                op, left, right, ..
            } => Expr::Arith(Box::new(self.math(left)?), *op, Box::new(self.math(right)?)),
        })
    }

    fn keys(&self, keys: &[ast::Key]) -> CResult<Vec<CKey>> {
        keys.iter()
            .map(|k| {
                Ok(match k {
                    ast::Key::String(s, _) => CKey::Str(s.clone()),
                    ast::Key::Int(i, _) => CKey::Int(*i),
                    ast::Key::Expr(v, _) => CKey::Expr(self.value(v)?),
                })
            })
            .collect()
    }

    pub(crate) fn path(&self, p: &ast::Path) -> CResult<CPath> {
        let text = self.source(p.span).to_string();
        let Some(first) = p.fields.first() else {
            return Err(self.err(p.span, "cannot make a path from zero fields"));
        };
        // otelcol's grammar reads a first segment without keys followed by `.` as a context.
        let named = (p.fields.len() > 1 && first.keys.is_empty()).then_some(first.name.as_str());
        let allowed = self.context.path_prefixes();
        let (context, rest) = match named {
            Some(name) if allowed.contains(&name) => match ContextKind::from_prefix(name) {
                Some(c) => (c, &p.fields[1..]),
                None => return Err(self.err(p.span, "internal: unknown context")),
            },
            _ if self.prefixes == Prefixes::Optional => (self.context, &p.fields[..]),
            Some(name) => {
                return Err(self.err(
                    p.span,
                    format!(
                        "context \"{name}\" from path \"{text}\" is not valid, it must be replaced by one of: {}",
                        quoted(allowed, "")
                    ),
                ))
            }
            None => {
                return Err(self.err(
                    p.span,
                    format!(
                        "missing context name for path \"{text}\", possibly valid options are: {}",
                        quoted(allowed, &format!(".{text}"))
                    ),
                ))
            }
        };
        let Some(head) = rest.first() else {
            return Err(self.err(p.span, format!(
                "segment \"{}\" from path \"{text}\" is not a valid path nor a valid OTTL keyword for the {} context; valid paths: {}",
                context.name(), self.context.name(), describe_paths(context)
            )));
        };
        if head.name == "cache" {
            if context != self.context {
                let fixed = text.replacen(
                    &format!("{}.", context.name()),
                    &format!("{}.", self.context.name()),
                    1,
                );
                return Err(self.err(p.span, format!(
                    "access to cache must be performed using the same context, please replace \"{text}\" with \"{fixed}\""
                )));
            }
            if let Some(extra) = rest.get(1) {
                return Err(self.unused_section(extra));
            }
            return Ok(CPath {
                field: Field::Cache,
                keys: self.keys(&head.keys)?,
            });
        }
        let second = rest.get(1).map(|f| f.name.as_str());
        let Some((field, used)) = lookup(context, &head.name, second, !head.keys.is_empty()) else {
            return Err(self.err(head.span, format!(
                "segment \"{}\" from path \"{text}\" is not a valid path nor a valid OTTL keyword for the {} context; valid paths: {}",
                head.name, context.name(), describe_paths(context)
            )));
        };
        if let Some(extra) = rest.get(used) {
            return Err(self.unused_section(extra));
        }
        let segments = &rest[..used];
        let keyed: Vec<&ast::Field> = segments.iter().filter(|f| !f.keys.is_empty()).collect();
        let keys = match (field.indexing(), keyed.as_slice()) {
            (_, []) => Vec::new(),
            (Indexing::None, [f, ..]) => {
                return Err(self.err(f.span, format!(
                    "the keys indexing \"{}\" were not used by the context - this likely means you are trying to index a path that does not support indexing",
                    f.name
                )))
            }
            (Indexing::ExactlyOne, [f]) if f.keys.len() != 1 => {
                return Err(self.err(f.span, "must provide exactly 1 key when accessing trace_state"))
            }
            (_, [f]) if segments.last().is_some_and(|last| std::ptr::eq(*f, last)) => {
                self.keys(&f.keys)?
            }
            (_, [f, ..]) => {
                return Err(self.err(f.span, format!(
                    "the keys indexing \"{}\" were not used by the context - this likely means you are trying to index a path that does not support indexing",
                    f.name
                )))
            }
        };
        Ok(CPath { field, keys })
    }

    fn unused_section(&self, f: &ast::Field) -> CompileError {
        self.err(
            f.span,
            format!(
                "the path section \"{}\" was not used by the context - this likely means you are using extra path sections",
                f.name
            ),
        )
    }

    fn editor(&self, call: &ast::Call) -> CResult<funcs::Editor> {
        let params = self.params(call, true)?;
        if !call.keys.is_empty() {
            return Err(self.err(call.span, "editors cannot be indexed"));
        }
        let args = self.bind(call, params)?;
        build_editor(&call.name, args)
            .map_err(|m| self.err(call.name_span, format!("couldn't create function: {m}")))
    }

    fn converter(&self, call: &ast::Call) -> CResult<ConverterCall> {
        if call.is_editor() {
            return Err(self.err(
                call.name_span,
                format!(
                    "converter names must start with an uppercase letter but got '{}'",
                    call.name
                ),
            ));
        }
        // otelcol registers `IsRootSpan` for the span context alone.
        if call.name == "IsRootSpan" && self.context != ContextKind::Span {
            return Err(self.err(
                call.name_span,
                format!(
                    "undefined function \"IsRootSpan\" in the {} context; it is available in \
                     the span context only",
                    self.context.name()
                ),
            ));
        }
        let params = self.params(call, false)?;
        let args = self.bind(call, params)?;
        let func = build_converter(&call.name, args)
            .map_err(|m| self.err(call.name_span, format!("couldn't create function: {m}")))?;
        Ok(ConverterCall {
            func,
            keys: self.keys(&call.keys)?,
        })
    }

    fn params(&self, call: &ast::Call, editor: bool) -> CResult<&'static [Param]> {
        funcs::lookup(&call.name).ok_or_else(|| {
            self.err(
                call.name_span,
                format!(
                    "undefined function \"{}\"; supported {}: {}",
                    call.name,
                    if editor { "editors" } else { "converters" },
                    funcs::names(editor)
                ),
            )
        })
    }

    /// otelcol's `buildArgs`: positional or named arguments (never unnamed after named),
    /// optional parameters at the end.
    fn bind(&self, call: &ast::Call, params: &'static [Param]) -> CResult<Args> {
        let mut seen_named = false;
        for a in &call.args {
            match (&a.name, seen_named) {
                (Some(_), _) => seen_named = true,
                (None, true) => {
                    return Err(self.err(a.span, "unnamed argument used after named argument"))
                }
                (None, false) => {}
            }
        }
        let required = params.iter().filter(|p| !p.optional).count();
        if call.args.len() < required || call.args.len() > params.len() {
            return Err(self.err(
                call.name_span,
                format!(
                    "error while parsing arguments for call to \"{}\": incorrect number of arguments. Expected: {} Received: {}",
                    call.name,
                    params.len(),
                    call.args.len()
                ),
            ));
        }
        let mut slots: Vec<Option<Arg>> = params.iter().map(|_| None).collect();
        for (position, a) in call.args.iter().enumerate() {
            let index = match &a.name {
                None => position,
                Some(name) => match params.iter().position(|p| same_name(p.name, name)) {
                    Some(i) => i,
                    None => {
                        return Err(self.err(a.span, format!(
                            "error while parsing arguments for call to \"{}\": no such parameter: {name}",
                            call.name
                        )))
                    }
                },
            };
            let (Some(param), Some(slot)) = (params.get(index), slots.get_mut(index)) else {
                return Err(self.err(a.span, "internal: argument out of range"));
            };
            let bound = self.arg(a, param.kind).map_err(|e| {
                if e.message.starts_with("invalid argument") {
                    e
                } else {
                    self.err(
                        a.span,
                        format!(
                            "error while parsing arguments for call to \"{}\": invalid argument at position {position}: {}",
                            call.name, e.message
                        ),
                    )
                }
            })?;
            *slot = Some(bound);
        }
        if let Some((p, _)) = params
            .iter()
            .zip(&slots)
            .find(|(p, s)| !p.optional && s.is_none())
        {
            return Err(self.err(
                call.name_span,
                format!("missing required argument {} for \"{}\"", p.name, call.name),
            ));
        }
        Ok(Args::new(slots))
    }

    fn arg(&self, a: &ast::Argument, kind: Kind) -> CResult<Arg> {
        let value = match &a.value {
            ArgValue::Value(v) => v,
            ArgValue::FunctionName(name) => {
                return match kind {
                    Kind::Function => self.function_arg(name, a.span),
                    _ => Err(self.err(a.span, format!("unexpected function name {name}"))),
                }
            }
        };
        let plain = |msg: &str| Err(self.err(a.span, msg.to_string()));
        Ok(match kind {
            Kind::Getter => Arg::Expr(self.value(value)?),
            Kind::Typed(want) => {
                let e = self.value(value)?;
                if let Some(lit) = e.literal() {
                    check_literal(want, lit).map_err(|m| self.err(a.span, m))?;
                }
                Arg::Expr(e)
            }
            Kind::Path | Kind::MapPath => match value {
                ast::Value::Path(p) => Arg::Path(self.path(p)?),
                _ => return plain("must be a path"),
            },
            Kind::LitString => match value {
                ast::Value::String(s, _) => Arg::Str(s.clone()),
                _ => return plain("must be a string"),
            },
            Kind::LitInt => match value {
                ast::Value::Int(i, _) => Arg::Int(*i),
                _ => return plain("must be an int"),
            },
            Kind::LitBool => match value {
                ast::Value::Bool(b, _) => Arg::Bool(*b),
                _ => return plain("must be a bool"),
            },
            Kind::LitStringList => match value {
                ast::Value::List(items, _) => Arg::StrList(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| match item {
                            ast::Value::String(s, _) => Ok(s.clone()),
                            _ => Err(self.err(
                                item.span(),
                                format!(
                                "invalid element type at list index {i}, must be of type string"
                            ),
                            )),
                        })
                        .collect::<CResult<_>>()?,
                ),
                _ => return plain("must be a list of type string"),
            },
            Kind::GetterList => match value {
                ast::Value::List(items, _) => Arg::Exprs(
                    items
                        .iter()
                        .map(|i| {
                            let e = self.value(i)?;
                            if let Some(lit) = e.literal() {
                                check_literal(Want::String, lit)
                                    .map_err(|m| self.err(i.span(), m))?;
                            }
                            Ok(e)
                        })
                        .collect::<CResult<_>>()?,
                ),
                _ => return plain("must be a list of type StringGetter"),
            },
            Kind::Slice => match value {
                ast::Value::List(items, _) => Arg::Slice(SliceArg::Items(
                    items
                        .iter()
                        .map(|i| self.value(i))
                        .collect::<CResult<_>>()?,
                )),
                other => Arg::Slice(SliceArg::Runtime(self.value(other)?)),
            },
            Kind::Function => match value {
                ast::Value::Enum(name, span) => return self.function_arg(name, *span),
                _ => return plain("invalid function name given"),
            },
        })
    }

    fn function_arg(&self, name: &str, span: Span) -> CResult<Arg> {
        match string_fn(name) {
            Some(f) => Ok(Arg::Func(f)),
            None if funcs::lookup(name).is_some() => Err(self.err(
                span,
                format!("function {name} cannot be used here: it must take exactly one string; supported: SHA256, ToLowerCase, ToUpperCase"),
            )),
            None => Err(self.err(span, format!("undefined function {name}"))),
        }
    }
}

/// Named arguments match parameters as otelcol's `strcase.ToCamel` lookup does.
fn same_name(param: &str, given: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_')
            .flat_map(char::to_lowercase)
            .collect()
    };
    norm(param) == norm(given)
}

fn quoted(names: &[&str], suffix: &str) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}{suffix}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A literal given to a typed getter is checked when compiling, as otelcol's literal getters
/// do.
fn check_literal(want: Want, lit: &Value<'_>) -> Result<(), String> {
    let (ok, name) = match want {
        Want::String => (matches!(lit, Value::Str(_)), "string"),
        Want::Int => (matches!(lit, Value::Int(_)), "int64"),
        Want::Float => (matches!(lit, Value::Double(_)), "float64"),
        Want::Bool => (matches!(lit, Value::Bool(_)), "bool"),
        Want::Map => (matches!(lit, Value::Map(_)), "pcommon.Map"),
        _ => (true, ""),
    };
    if ok {
        Ok(())
    } else if lit.is_nil() {
        Err(format!("expected {name} but got nil"))
    } else {
        Err(format!("expected {name} but got {}", lit.type_name()))
    }
}
