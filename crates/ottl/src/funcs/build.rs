//! Turns bound arguments into a compiled editor or converter, with the checks otelcol's
//! factories make when the function is created (modes, limits, literal regexes).

use super::patterns::{compile_glob, compile_go_regex};
use super::{Case, Converter, Editor, MergeStrategy, Pattern, Replacement, SliceArg, StringFn};
use crate::ir::{CPath, Expr};
use crate::value::Value;

/// One bound argument, of the form its parameter's [`super::Kind`] asks for.
#[derive(Debug)]
pub(crate) enum Arg {
    Expr(Expr),
    Path(CPath),
    Str(String),
    Int(i64),
    Bool(bool),
    StrList(Vec<String>),
    Exprs(Vec<Expr>),
    Slice(SliceArg),
    Func(StringFn),
}

/// Arguments in parameter order; `None` for an optional one not given.
pub(crate) struct Args {
    slots: std::vec::IntoIter<Option<Arg>>,
}

impl Args {
    pub(crate) fn new(slots: Vec<Option<Arg>>) -> Self {
        Self {
            slots: slots.into_iter(),
        }
    }

    fn next(&mut self) -> Option<Arg> {
        self.slots.next().flatten()
    }

    fn expr(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Arg::Expr(e)) => Ok(e),
            _ => Err("internal: expected a value argument".into()),
        }
    }

    fn path(&mut self) -> Result<CPath, String> {
        match self.next() {
            Some(Arg::Path(p)) => Ok(p),
            _ => Err("internal: expected a path argument".into()),
        }
    }

    fn string(&mut self) -> Option<String> {
        match self.next() {
            Some(Arg::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn int(&mut self) -> Option<i64> {
        match self.next() {
            Some(Arg::Int(i)) => Some(i),
            _ => None,
        }
    }

    fn bool(&mut self) -> Option<bool> {
        match self.next() {
            Some(Arg::Bool(b)) => Some(b),
            _ => None,
        }
    }

    fn func(&mut self) -> Option<StringFn> {
        match self.next() {
            Some(Arg::Func(f)) => Some(f),
            _ => None,
        }
    }

    fn opt_expr(&mut self) -> Option<Expr> {
        match self.next() {
            Some(Arg::Expr(e)) => Some(e),
            _ => None,
        }
    }
}

fn pattern(func: &str, e: Expr, glob: bool) -> Result<Pattern, String> {
    match e.literal() {
        Some(Value::Str(p)) => {
            let compiled = if glob {
                compile_glob(p)
            } else {
                compile_go_regex(p)
            };
            compiled.map(Pattern::Static).map_err(|err| {
                format!("the regex pattern supplied to {func} {p:?} is not a valid pattern: {err}")
            })
        }
        _ => Ok(Pattern::Dynamic(e)),
    }
}

fn replacement(args: &mut Args) -> Result<Replacement, String> {
    Ok(Replacement {
        replacement: args.expr()?,
        function: args.func(),
        format: args.opt_expr(),
    })
}

fn non_negative(func: &str, what: &str, v: i64) -> Result<usize, String> {
    usize::try_from(v)
        .map_err(|_| format!("invalid {what} for {func} function, {v} cannot be negative"))
}

pub(crate) fn build_editor(name: &str, mut a: Args) -> Result<Editor, String> {
    Ok(match name {
        "set" => Editor::Set {
            target: a.path()?,
            value: a.expr()?,
        },
        "delete_key" => Editor::DeleteKey {
            target: a.path()?,
            key: a.expr()?,
        },
        "delete_matching_keys" => Editor::DeleteMatchingKeys {
            target: a.path()?,
            pattern: pattern(name, a.expr()?, false)?,
        },
        "keep_keys" => Editor::KeepKeys {
            target: a.path()?,
            keys: match a.next() {
                Some(Arg::Exprs(keys)) => keys,
                _ => return Err("internal: expected a list".into()),
            },
        },
        "keep_matching_keys" => Editor::KeepMatchingKeys {
            target: a.path()?,
            pattern: pattern(name, a.expr()?, false)?,
        },
        "limit" => {
            let target = a.path()?;
            let raw = a.int().unwrap_or(0);
            let limit = usize::try_from(raw).map_err(|_| {
                format!("invalid limit for limit function, {raw} cannot be negative")
            })?;
            let priority_keys = match a.next() {
                Some(Arg::StrList(keys)) => keys,
                _ => Vec::new(),
            };
            if limit < priority_keys.len() {
                return Err(format!(
                    "invalid limit for limit function, {limit} cannot be less than number of priority attributes {}",
                    priority_keys.len()
                ));
            }
            Editor::Limit {
                target,
                limit,
                priority_keys,
            }
        }
        "truncate_all" => {
            let target = a.path()?;
            let limit = non_negative("truncate_all", "limit", a.int().unwrap_or(0))?;
            let utf8_safe = a.bool().unwrap_or(true);
            let marker = a.string().unwrap_or_default();
            if marker.len() > limit {
                return Err(format!(
                    "invalid truncation marker for truncate_all function, length of marker {} cannot be greater than limit {limit}",
                    marker.len()
                ));
            }
            Editor::TruncateAll {
                target,
                limit,
                utf8_safe,
                marker,
            }
        }
        "replace_pattern" => Editor::ReplacePattern {
            target: a.path()?,
            pattern: pattern(name, a.expr()?, false)?,
            with: replacement(&mut a)?,
        },
        "replace_all_patterns" => {
            let target = a.path()?;
            let mode = a.string().unwrap_or_default();
            let pattern = pattern(name, a.expr()?, false)?;
            let keys_mode = match mode.as_str() {
                "key" => true,
                "value" => false,
                _ => {
                    return Err(format!(
                        "invalid mode {mode}, must be either 'key' or 'value'"
                    ))
                }
            };
            Editor::ReplaceAllPatterns {
                target,
                keys_mode,
                pattern,
                with: replacement(&mut a)?,
            }
        }
        "replace_match" => Editor::ReplaceMatch {
            target: a.path()?,
            pattern: pattern(name, a.expr()?, true)?,
            with: replacement(&mut a)?,
        },
        "replace_all_matches" => Editor::ReplaceAllMatches {
            target: a.path()?,
            pattern: pattern(name, a.expr()?, true)?,
            with: replacement(&mut a)?,
        },
        "merge_maps" => {
            let target = a.path()?;
            let source = a.expr()?;
            let strategy = match a.string().unwrap_or_default().as_str() {
                "insert" => MergeStrategy::Insert,
                "update" => MergeStrategy::Update,
                "upsert" => MergeStrategy::Upsert,
                other => {
                    return Err(format!(
                    "invalid value for strategy, {other}, must be 'insert', 'update' or 'upsert'"
                ))
                }
            };
            Editor::MergeMaps {
                target,
                source,
                strategy,
            }
        }
        other => return Err(format!("undefined function {other:?}")),
    })
}

pub(crate) fn build_converter(name: &str, mut a: Args) -> Result<Converter, String> {
    Ok(match name {
        "IsMatch" => {
            let target = a.expr()?;
            Converter::IsMatch {
                target,
                pattern: pattern("IsMatch", a.expr()?, false)?,
            }
        }
        "Concat" => Converter::Concat {
            vals: match a.next() {
                Some(Arg::Slice(s)) => s,
                _ => return Err("internal: expected a slice".into()),
            },
            delimiter: a.expr()?,
        },
        "Split" => Converter::Split {
            target: a.expr()?,
            delimiter: a.expr()?,
        },
        "Substring" => Converter::Substring {
            target: a.expr()?,
            start: a.expr()?,
            length: a.expr()?,
            utf8_safe: a.bool().unwrap_or(false),
        },
        "ConvertCase" => {
            let target = a.expr()?;
            let case = match a.string().unwrap_or_default().as_str() {
                "lower" => Case::Lower,
                "upper" => Case::Upper,
                "snake" => Case::Snake,
                "camel" => Case::Camel,
                other => {
                    return Err(format!(
                        "invalid case: {other}, allowed cases are: lower, upper, snake, camel"
                    ))
                }
            };
            Converter::ConvertCase { target, case }
        }
        "Int" => Converter::Int(a.expr()?),
        "Double" => Converter::Double(a.expr()?),
        "Bool" => Converter::Bool(a.expr()?),
        "String" => Converter::String(a.expr()?),
        "Len" => Converter::Len(a.expr()?),
        "SHA256" => Converter::Sha256(a.expr()?),
        "IsString" => Converter::IsString(a.expr()?),
        "IsRootSpan" => Converter::IsRootSpan,
        "IsMap" => Converter::IsMap(a.expr()?),
        "IsBool" => Converter::IsBool(a.expr()?),
        "IsInt" => Converter::IsInt(a.expr()?),
        "IsDouble" => Converter::IsDouble(a.expr()?),
        "IsList" => Converter::IsList(a.expr()?),
        "HasPrefix" => Converter::HasPrefix {
            target: a.expr()?,
            prefix: a.expr()?,
        },
        "HasSuffix" => Converter::HasSuffix {
            target: a.expr()?,
            suffix: a.expr()?,
        },
        "ToLowerCase" => Converter::ToLowerCase(a.expr()?),
        "ToUpperCase" => Converter::ToUpperCase(a.expr()?),
        "Hex" => Converter::Hex(a.expr()?),
        "Trim" => Converter::Trim {
            target: a.expr()?,
            cutset: a.string().unwrap_or_else(|| " ".to_string()),
        },
        "TrimPrefix" => Converter::TrimPrefix {
            target: a.expr()?,
            prefix: a.expr()?,
        },
        "TrimSuffix" => Converter::TrimSuffix {
            target: a.expr()?,
            suffix: a.expr()?,
        },
        other => return Err(format!("undefined function {other:?}")),
    })
}

/// The converters a replace editor accepts as its `function` argument: those taking one
/// string (otelcol passes the expanded match as their only argument).
pub(crate) fn string_fn(name: &str) -> Option<StringFn> {
    Some(match name {
        "SHA256" => StringFn::Sha256,
        "ToLowerCase" => StringFn::ToLowerCase,
        "ToUpperCase" => StringFn::ToUpperCase,
        _ => return None,
    })
}
