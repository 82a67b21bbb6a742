//! The syntax tree of one OTTL statement or condition, as the parser produces it.
//!
//! It mirrors otelcol's grammar (pkg/ottl `grammar.go`): a statement is an editor call or a
//! converter call with an optional `where` clause; a condition is a boolean expression.
//! Every node that can be wrong at compile time carries the [`Span`] (byte offsets into the
//! statement text) so errors can name the column.

/// Byte range `[start, end)` in the statement text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
    /// 1-based column of the start, counted in characters.
    pub fn column(&self, text: &str) -> usize {
        text.get(..self.start)
            .map(|s| s.chars().count() + 1)
            .unwrap_or(1)
    }
}

/// `editor(args) where cond` or `Converter(args) where cond`.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// An editor (lower-case name) or, rarely, a converter used as a statement.
    pub call: Call,
    pub where_clause: Option<BoolExpr>,
}

/// A function call: editor (`set`) or converter (`Concat`), with index keys applied to the
/// result (`Split(x, ",")[0]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub name_span: Span,
    pub args: Vec<Argument>,
    pub keys: Vec<Key>,
    pub span: Span,
}

impl Call {
    /// Editors start with a lower-case letter, converters with an upper-case one.
    pub fn is_editor(&self) -> bool {
        self.name.starts_with(|c: char| c.is_ascii_lowercase())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Argument {
    /// `name = value` (named arguments; all or none of a call's arguments are named).
    pub name: Option<String>,
    pub value: ArgValue,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    Value(Value),
    /// A bare upper-case identifier passed as a function (`ConvertCase`-style factories,
    /// e.g. `SHA256` in `keep_matching_keys`-like arguments): `FunctionName`.
    FunctionName(String),
}

/// `or` of `and` terms.
#[derive(Debug, Clone, PartialEq)]
pub enum BoolExpr {
    Or(Vec<BoolExpr>),
    And(Vec<BoolExpr>),
    Not(Box<BoolExpr>),
    Comparison(Box<Comparison>),
    /// `true` / `false`.
    Literal(bool),
    /// A converter returning a bool (`IsMatch(name, "x")`).
    Converter(Call),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub left: Value,
    pub op: CompareOp,
    pub right: Value,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A value expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil(Span),
    Bool(bool, Span),
    Int(i64, Span),
    Float(f64, Span),
    /// Unescaped string literal.
    String(String, Span),
    /// `0xDEADBEEF`.
    Bytes(Vec<u8>, Span),
    /// An upper-case identifier that is not a call: an enum symbol (`SPAN_KIND_SERVER`,
    /// `STATUS_CODE_ERROR`, `AGGREGATION_TEMPORALITY_DELTA`, `METRIC_DATA_TYPE_SUM`, ...).
    Enum(String, Span),
    Path(Path),
    Converter(Call),
    /// An editor call in value position is a grammar error in otelcol; kept so the
    /// compiler can say so with a column.
    Editor(Call),
    List(Vec<Value>, Span),
    Map(Vec<(String, Value)>, Span),
    Math(Box<MathExpr>),
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Nil(s)
            | Value::Bool(_, s)
            | Value::Int(_, s)
            | Value::Float(_, s)
            | Value::String(_, s)
            | Value::Bytes(_, s)
            | Value::Enum(_, s)
            | Value::List(_, s)
            | Value::Map(_, s) => *s,
            Value::Path(p) => p.span,
            Value::Converter(c) | Value::Editor(c) => c.span,
            Value::Math(m) => m.span(),
        }
    }
}

/// Arithmetic: `+ - * /` with the usual precedence, unary minus folded into literals where
/// the operand is a literal.
#[derive(Debug, Clone, PartialEq)]
pub enum MathExpr {
    Leaf(Value),
    Neg(Box<MathExpr>, Span),
    Binary {
        op: MathOp,
        left: Box<MathExpr>,
        right: Box<MathExpr>,
        span: Span,
    },
}

impl MathExpr {
    pub fn span(&self) -> Span {
        match self {
            MathExpr::Leaf(v) => v.span(),
            MathExpr::Neg(_, s) => *s,
            MathExpr::Binary { span, .. } => *span,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// `span.attributes["http.url"]`, `resource.attributes["service.name"]`, `name`,
/// `status.code`, `attributes["a"]["b"][0]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// Lower-case segments in order; the first may be a context name (`span`, `resource`,
    /// `scope`, `spanevent`, `metric`, `datapoint`, `log`): the compiler decides whether it
    /// is one, as otelcol's context inference does.
    pub fields: Vec<Field>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub keys: Vec<Key>,
    pub span: Span,
}

/// An index: `["key"]`, `[0]`, or an expression `[attributes["k"]]` / `[Concat(...)]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    String(String, Span),
    Int(i64, Span),
    Expr(Box<Value>, Span),
}
