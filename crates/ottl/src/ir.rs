//! The compiled form of statements and conditions: paths resolved to fields, functions bound
//! to their arguments, literals folded, regexes compiled.

use crate::ast::{CompareOp, MathOp};
use crate::funcs::{Converter, Editor};
use crate::paths::Field;
use crate::value::Value;

#[derive(Debug)]
pub(crate) enum Expr {
    Literal(Value<'static>),
    Path(Box<CPath>),
    Call(Box<ConverterCall>),
    List(Vec<Expr>),
    Map(Vec<(String, Expr)>),
    Arith(Box<Expr>, MathOp, Box<Expr>),
    Neg(Box<Expr>),
}

impl Expr {
    pub(crate) fn literal(&self) -> Option<&Value<'static>> {
        match self {
            Expr::Literal(v) => Some(v),
            _ => None,
        }
    }
}

/// A path: a field and the keys indexing into it.
#[derive(Debug)]
pub(crate) struct CPath {
    pub field: Field,
    pub keys: Vec<CKey>,
}

#[derive(Debug)]
pub(crate) enum CKey {
    Str(String),
    Int(i64),
    Expr(Expr),
}

#[derive(Debug)]
pub(crate) struct ConverterCall {
    pub func: Converter,
    pub keys: Vec<CKey>,
}

#[derive(Debug)]
pub(crate) enum Cond {
    Or(Vec<Cond>),
    And(Vec<Cond>),
    Not(Box<Cond>),
    Cmp(Expr, CompareOp, Expr),
    Lit(bool),
    Call(Box<ConverterCall>),
}

#[derive(Debug)]
pub(crate) enum Action {
    Editor(Editor),
}

/// One compiled statement.
#[derive(Debug)]
pub(crate) struct CStatement {
    pub text: String,
    pub action: Action,
    pub condition: Option<Cond>,
}

/// One compiled condition.
#[derive(Debug)]
pub(crate) struct CCondition {
    pub text: String,
    pub cond: Cond,
}
