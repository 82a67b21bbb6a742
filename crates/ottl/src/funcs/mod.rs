//! The function registry: each function's parameters (otelcol's `Arguments` structs), and
//! the compiled calls with their bound arguments.

pub(crate) mod build;
mod case;
mod converters;
mod editors;
pub(crate) mod getters;
pub(crate) mod patterns;

pub(crate) use build::{build_converter, build_editor};
pub(crate) use converters::eval_converter;
pub(crate) use editors::{apply_editor, editor_would_change};

use regex::Regex;

use crate::ir::{CPath, Expr};

/// How an argument is bound (otelcol's argument field types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `Getter`: any value.
    Getter,
    /// `StringGetter`, `IntGetter`, ...: any value, checked at run time (literals at compile
    /// time).
    Typed(Want),
    /// `GetSetter` / `Setter`: a path.
    Path,
    /// `PMapGetSetter`: a path to a map.
    MapPath,
    /// Literal `string`, `int64`, `bool` parameters.
    LitString,
    LitInt,
    LitBool,
    /// `[]string`: a list of string literals.
    LitStringList,
    /// `[]StringGetter`: a list of values.
    GetterList,
    /// `SliceGetter[StringLikeGetter]`: a list literal, or a value that is a slice.
    Slice,
    /// `FunctionGetter`: the name of a converter.
    Function,
}

/// The type a typed getter wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    String,
    StringLike,
    Int,
    IntLike,
    Float,
    FloatLike,
    Bool,
    BoolLike,
    BytesLike,
    Map,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub optional: bool,
}

const fn p(name: &'static str, kind: Kind) -> Param {
    Param {
        name,
        kind,
        optional: false,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Param {
    Param {
        name,
        kind,
        optional: true,
    }
}

use Kind::*;
use Want as W;

const REPLACE_TAIL: [Param; 2] = [
    opt("function", Function),
    opt("replacement_format", Typed(W::String)),
];

/// Editors and converters this crate implements, with their parameters in order.
pub(crate) const REGISTRY: &[(&str, &[Param])] = &[
    ("set", &[p("target", Path), p("value", Getter)]),
    (
        "delete_key",
        &[p("target", MapPath), p("key", Typed(W::String))],
    ),
    (
        "delete_matching_keys",
        &[p("target", MapPath), p("pattern", Typed(W::String))],
    ),
    ("keep_keys", &[p("target", MapPath), p("keys", GetterList)]),
    (
        "keep_matching_keys",
        &[p("target", MapPath), p("pattern", Typed(W::String))],
    ),
    (
        "limit",
        &[
            p("target", MapPath),
            p("limit", LitInt),
            p("priority_keys", LitStringList),
        ],
    ),
    (
        "truncate_all",
        &[
            p("target", MapPath),
            p("limit", LitInt),
            opt("utf8_safe", LitBool),
            opt("truncation_marker", LitString),
        ],
    ),
    (
        "replace_pattern",
        &[
            p("target", Path),
            p("regex_pattern", Typed(W::String)),
            p("replacement", Typed(W::String)),
            REPLACE_TAIL[0],
            REPLACE_TAIL[1],
        ],
    ),
    (
        "replace_all_patterns",
        &[
            p("target", MapPath),
            p("mode", LitString),
            p("regex_pattern", Typed(W::String)),
            p("replacement", Typed(W::String)),
            REPLACE_TAIL[0],
            REPLACE_TAIL[1],
        ],
    ),
    (
        "replace_match",
        &[
            p("target", Path),
            p("pattern", Typed(W::String)),
            p("replacement", Typed(W::String)),
            REPLACE_TAIL[0],
            REPLACE_TAIL[1],
        ],
    ),
    (
        "replace_all_matches",
        &[
            p("target", MapPath),
            p("pattern", Typed(W::String)),
            p("replacement", Typed(W::String)),
            REPLACE_TAIL[0],
            REPLACE_TAIL[1],
        ],
    ),
    (
        "merge_maps",
        &[
            p("target", MapPath),
            p("source", Typed(W::Map)),
            p("strategy", LitString),
        ],
    ),
    (
        "IsMatch",
        &[
            p("target", Typed(W::StringLike)),
            p("pattern", Typed(W::String)),
        ],
    ),
    (
        "Concat",
        &[p("vals", Slice), p("delimiter", Typed(W::String))],
    ),
    (
        "Split",
        &[
            p("target", Typed(W::String)),
            p("delimiter", Typed(W::String)),
        ],
    ),
    (
        "Substring",
        &[
            p("target", Typed(W::String)),
            p("start", Typed(W::Int)),
            p("length", Typed(W::Int)),
            opt("utf8_safe", LitBool),
        ],
    ),
    (
        "ConvertCase",
        &[p("target", Typed(W::String)), p("to_case", LitString)],
    ),
    ("Int", &[p("target", Typed(W::IntLike))]),
    ("Double", &[p("target", Typed(W::FloatLike))]),
    ("Bool", &[p("target", Typed(W::BoolLike))]),
    ("String", &[p("target", Typed(W::StringLike))]),
    ("Len", &[p("target", Getter)]),
    ("SHA256", &[p("target", Typed(W::String))]),
    ("IsString", &[p("target", Typed(W::String))]),
    // Span context only (`Compiler::converter` checks).
    ("IsRootSpan", &[]),
    ("IsMap", &[p("target", Typed(W::Map))]),
    ("IsBool", &[p("target", Typed(W::Bool))]),
    ("IsInt", &[p("target", Typed(W::Int))]),
    ("IsDouble", &[p("target", Typed(W::Float))]),
    ("IsList", &[p("target", Getter)]),
    (
        "HasPrefix",
        &[p("target", Typed(W::String)), p("prefix", Typed(W::String))],
    ),
    (
        "HasSuffix",
        &[p("target", Typed(W::String)), p("suffix", Typed(W::String))],
    ),
    ("ToLowerCase", &[p("target", Typed(W::String))]),
    ("ToUpperCase", &[p("target", Typed(W::String))]),
    ("Hex", &[p("target", Typed(W::BytesLike))]),
    (
        "Trim",
        &[p("target", Typed(W::String)), opt("replacement", LitString)],
    ),
    (
        "TrimPrefix",
        &[p("target", Typed(W::String)), p("prefix", Typed(W::String))],
    ),
    (
        "TrimSuffix",
        &[p("target", Typed(W::String)), p("suffix", Typed(W::String))],
    ),
];

pub(crate) fn lookup(name: &str) -> Option<&'static [Param]> {
    REGISTRY.iter().find(|(n, _)| *n == name).map(|(_, ps)| *ps)
}

/// Names of the registered editors or converters, for error messages.
pub(crate) fn names(editors: bool) -> String {
    let names: Vec<&str> = REGISTRY
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| n.starts_with(|c: char| c.is_ascii_lowercase()) == editors)
        .collect();
    names.join(", ")
}

/// A regex known at compile time or computed per item.
#[derive(Debug)]
pub(crate) enum Pattern {
    Static(Regex),
    Dynamic(Expr),
}

/// A converter passed by name to the replace editors; it gets the expanded match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringFn {
    Sha256,
    ToLowerCase,
    ToUpperCase,
}

/// The optional tail of the replace editors.
#[derive(Debug)]
pub(crate) struct Replacement {
    pub replacement: Expr,
    pub function: Option<StringFn>,
    pub format: Option<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MergeStrategy {
    Insert,
    Update,
    Upsert,
}

#[derive(Debug)]
pub(crate) enum Editor {
    Set {
        target: CPath,
        value: Expr,
    },
    DeleteKey {
        target: CPath,
        key: Expr,
    },
    DeleteMatchingKeys {
        target: CPath,
        pattern: Pattern,
    },
    KeepKeys {
        target: CPath,
        keys: Vec<Expr>,
    },
    KeepMatchingKeys {
        target: CPath,
        pattern: Pattern,
    },
    Limit {
        target: CPath,
        limit: usize,
        priority_keys: Vec<String>,
    },
    TruncateAll {
        target: CPath,
        limit: usize,
        utf8_safe: bool,
        marker: String,
    },
    ReplacePattern {
        target: CPath,
        pattern: Pattern,
        with: Replacement,
    },
    ReplaceAllPatterns {
        target: CPath,
        keys_mode: bool,
        pattern: Pattern,
        with: Replacement,
    },
    ReplaceMatch {
        target: CPath,
        pattern: Pattern,
        with: Replacement,
    },
    ReplaceAllMatches {
        target: CPath,
        pattern: Pattern,
        with: Replacement,
    },
    MergeMaps {
        target: CPath,
        source: Expr,
        strategy: MergeStrategy,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    Lower,
    Upper,
    Snake,
    Camel,
}

/// Values a `Concat` joins.
#[derive(Debug)]
pub(crate) enum SliceArg {
    Items(Vec<Expr>),
    Runtime(Expr),
}

#[derive(Debug)]
pub(crate) enum Converter {
    IsMatch {
        target: Expr,
        pattern: Pattern,
    },
    Concat {
        vals: SliceArg,
        delimiter: Expr,
    },
    Split {
        target: Expr,
        delimiter: Expr,
    },
    Substring {
        target: Expr,
        start: Expr,
        length: Expr,
        utf8_safe: bool,
    },
    ConvertCase {
        target: Expr,
        case: Case,
    },
    Int(Expr),
    Double(Expr),
    Bool(Expr),
    String(Expr),
    Len(Expr),
    Sha256(Expr),
    IsString(Expr),
    /// Whether the span has no parent (an all-zero `parent_span_id`).
    IsRootSpan,
    IsMap(Expr),
    IsBool(Expr),
    IsInt(Expr),
    IsDouble(Expr),
    IsList(Expr),
    HasPrefix {
        target: Expr,
        prefix: Expr,
    },
    HasSuffix {
        target: Expr,
        suffix: Expr,
    },
    ToLowerCase(Expr),
    ToUpperCase(Expr),
    Hex(Expr),
    Trim {
        target: Expr,
        cutset: String,
    },
    TrimPrefix {
        target: Expr,
        prefix: Expr,
    },
    TrimSuffix {
        target: Expr,
        suffix: Expr,
    },
}
