//! A small parser for the tests of this crate only (the real one is a separate module):
//! enough OTTL to write statements as text in tests.

use crate::ast::*;
use crate::error::CompileError;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    P(&'static str),
}

const PUNCT: [&str; 20] = [
    "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "=", "<", ">", "+", "-",
    "*", "/",
];

fn lex(text: &str) -> Result<Vec<(Tok, Span)>, String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'"' {
            let mut s = String::new();
            i += 1;
            loop {
                let ch = text[i..].chars().next().ok_or("unterminated string")?;
                i += ch.len_utf8();
                match ch {
                    '"' => break,
                    '\\' => {
                        let e = text[i..].chars().next().ok_or("bad escape")?;
                        i += e.len_utf8();
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                    }
                    other => s.push(other),
                }
            }
            out.push((Tok::Str(s), Span::new(start, i)));
            continue;
        }
        if c.is_ascii_digit() {
            if text[i..].starts_with("0x") {
                i += 2;
                let hs = i;
                while i < b.len() && b[i].is_ascii_hexdigit() {
                    i += 1;
                }
                let bytes = crate::value::hex_decode(&text[hs..i]).ok_or("bad bytes")?;
                out.push((Tok::Bytes(bytes), Span::new(start, i)));
                continue;
            }
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let t = &text[start..i];
            let tok = if t.contains('.') {
                Tok::Float(t.parse().map_err(|_| "bad float")?)
            } else {
                Tok::Int(t.parse().map_err(|_| "bad int")?)
            };
            out.push((tok, Span::new(start, i)));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(text[start..i].to_string()), Span::new(start, i)));
            continue;
        }
        let p = PUNCT
            .iter()
            .find(|p| text[i..].starts_with(**p))
            .ok_or_else(|| format!("unexpected character at {i}"))?;
        i += p.len();
        out.push((Tok::P(p), Span::new(start, i)));
    }
    Ok(out)
}

struct P {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    end: usize,
}

type R<T> = Result<T, String>;

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.0)
    }
    fn span(&self) -> Span {
        self.toks
            .get(self.pos)
            .map_or(Span::new(self.end, self.end), |t| t.1)
    }
    fn prev_end(&self) -> usize {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.toks.get(i))
            .map_or(0, |t| t.1.end)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.0.clone());
        self.pos += 1;
        t
    }
    fn eat(&mut self, p: &str) -> bool {
        if self.peek()
            == Some(&Tok::P(match PUNCT.iter().find(|x| **x == p) {
                Some(x) => x,
                None => return false,
            }))
        {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, p: &str) -> R<()> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(format!("expected {p} at {:?}", self.peek()))
        }
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(x)) if x == w)
    }

    fn call(&mut self, name: String, name_span: Span) -> R<Call> {
        self.expect("(")?;
        let mut args = Vec::new();
        while !self.eat(")") {
            let start = self.span().start;
            let named = match (self.peek(), self.peek_at(1)) {
                (Some(Tok::Ident(n)), Some(Tok::P("="))) => Some(n.clone()),
                _ => None,
            };
            if named.is_some() {
                self.pos += 2;
            }
            let value = self.value()?;
            args.push(Argument {
                name: named,
                value: ArgValue::Value(value),
                span: Span::new(start, self.prev_end()),
            });
            if !self.eat(",") {
                self.expect(")")?;
                break;
            }
        }
        let keys = self.keys()?;
        Ok(Call {
            name,
            name_span,
            args,
            keys,
            span: Span::new(name_span.start, self.prev_end()),
        })
    }

    fn keys(&mut self) -> R<Vec<Key>> {
        let mut keys = Vec::new();
        while self.peek() == Some(&Tok::P("[")) {
            let start = self.span().start;
            self.pos += 1;
            let k = match (self.peek().cloned(), self.peek_at(1)) {
                (Some(Tok::Str(s)), Some(Tok::P("]"))) => {
                    self.pos += 1;
                    Key::String(s, Span::new(start, start))
                }
                (Some(Tok::Int(i)), Some(Tok::P("]"))) => {
                    self.pos += 1;
                    Key::Int(i, Span::new(start, start))
                }
                _ => Key::Expr(Box::new(self.value()?), Span::new(start, start)),
            };
            self.expect("]")?;
            keys.push(k);
        }
        Ok(keys)
    }

    fn value(&mut self) -> R<Value> {
        let start = self.span().start;
        let mut left = MathExpr::Leaf(self.product()?);
        while let Some(Tok::P(op @ ("+" | "-"))) = self.peek().cloned() {
            self.pos += 1;
            let right = MathExpr::Leaf(self.product()?);
            left = MathExpr::Binary {
                op: if op == "+" { MathOp::Add } else { MathOp::Sub },
                left: Box::new(left),
                right: Box::new(right),
                span: Span::new(start, self.prev_end()),
            };
        }
        Ok(match left {
            MathExpr::Leaf(v) => v,
            m => Value::Math(Box::new(m)),
        })
    }

    fn product(&mut self) -> R<Value> {
        let start = self.span().start;
        let mut left = MathExpr::Leaf(self.unary()?);
        while let Some(Tok::P(op @ ("*" | "/"))) = self.peek().cloned() {
            self.pos += 1;
            let right = MathExpr::Leaf(self.unary()?);
            left = MathExpr::Binary {
                op: if op == "*" { MathOp::Mul } else { MathOp::Div },
                left: Box::new(left),
                right: Box::new(right),
                span: Span::new(start, self.prev_end()),
            };
        }
        Ok(match left {
            MathExpr::Leaf(v) => v,
            m => Value::Math(Box::new(m)),
        })
    }

    fn unary(&mut self) -> R<Value> {
        let span = self.span();
        if self.eat("-") {
            return Ok(match self.unary()? {
                Value::Int(i, s) => Value::Int(-i, s),
                Value::Float(f, s) => Value::Float(-f, s),
                v => Value::Math(Box::new(MathExpr::Neg(Box::new(MathExpr::Leaf(v)), span))),
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> R<Value> {
        let span = self.span();
        let tok = self.next().ok_or("unexpected end")?;
        Ok(match tok {
            Tok::Int(i) => Value::Int(i, span),
            Tok::Float(f) => Value::Float(f, span),
            Tok::Str(s) => Value::String(s, span),
            Tok::Bytes(b) => Value::Bytes(b, span),
            Tok::P("(") => {
                let v = self.value()?;
                self.expect(")")?;
                v
            }
            Tok::P("[") => {
                let mut items = Vec::new();
                while !self.eat("]") {
                    items.push(self.value()?);
                    if !self.eat(",") {
                        self.expect("]")?;
                        break;
                    }
                }
                Value::List(items, Span::new(span.start, self.prev_end()))
            }
            Tok::P("{") => {
                let mut entries = Vec::new();
                while !self.eat("}") {
                    let Some(Tok::Str(k)) = self.next() else {
                        return Err("map key must be a string".into());
                    };
                    self.expect(":")?;
                    entries.push((k, self.value()?));
                    if !self.eat(",") {
                        self.expect("}")?;
                        break;
                    }
                }
                Value::Map(entries, Span::new(span.start, self.prev_end()))
            }
            Tok::Ident(w) if w == "nil" => Value::Nil(span),
            Tok::Ident(w) if w == "true" => Value::Bool(true, span),
            Tok::Ident(w) if w == "false" => Value::Bool(false, span),
            Tok::Ident(w) if self.peek() == Some(&Tok::P("(")) => {
                let call = self.call(w, span)?;
                if call.is_editor() {
                    Value::Editor(call)
                } else {
                    Value::Converter(call)
                }
            }
            Tok::Ident(w) if w.starts_with(|c: char| c.is_ascii_uppercase()) => {
                Value::Enum(w, span)
            }
            Tok::Ident(w) => {
                let mut fields = vec![Field {
                    name: w,
                    keys: self.keys()?,
                    span,
                }];
                while self.peek() == Some(&Tok::P(".")) {
                    self.pos += 1;
                    let fspan = self.span();
                    let Some(Tok::Ident(name)) = self.next() else {
                        return Err("expected a path segment".into());
                    };
                    fields.push(Field {
                        name,
                        keys: self.keys()?,
                        span: fspan,
                    });
                }
                Value::Path(Path {
                    fields,
                    span: Span::new(span.start, self.prev_end()),
                })
            }
            other => return Err(format!("unexpected {other:?}")),
        })
    }

    fn bool_expr(&mut self) -> R<BoolExpr> {
        let mut terms = vec![self.and_expr()?];
        while self.is_word("or") {
            self.pos += 1;
            terms.push(self.and_expr()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            BoolExpr::Or(terms)
        })
    }

    fn and_expr(&mut self) -> R<BoolExpr> {
        let mut terms = vec![self.factor()?];
        while self.is_word("and") {
            self.pos += 1;
            terms.push(self.factor()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            BoolExpr::And(terms)
        })
    }

    fn factor(&mut self) -> R<BoolExpr> {
        if self.is_word("not") {
            self.pos += 1;
            return Ok(BoolExpr::Not(Box::new(self.factor()?)));
        }
        if self.peek() == Some(&Tok::P("(")) {
            let save = self.pos;
            self.pos += 1;
            if let Ok(b) = self.bool_expr() {
                if self.eat(")") {
                    return Ok(b);
                }
            }
            self.pos = save;
        }
        let start = self.span().start;
        let left = self.value()?;
        let op = match self.peek() {
            Some(Tok::P("==")) => Some(CompareOp::Eq),
            Some(Tok::P("!=")) => Some(CompareOp::Ne),
            Some(Tok::P("<")) => Some(CompareOp::Lt),
            Some(Tok::P("<=")) => Some(CompareOp::Le),
            Some(Tok::P(">")) => Some(CompareOp::Gt),
            Some(Tok::P(">=")) => Some(CompareOp::Ge),
            _ => None,
        };
        match (op, left) {
            (Some(op), left) => {
                self.pos += 1;
                let right = self.value()?;
                Ok(BoolExpr::Comparison(Box::new(Comparison {
                    left,
                    op,
                    right,
                    span: Span::new(start, self.prev_end()),
                })))
            }
            (None, Value::Converter(c)) => Ok(BoolExpr::Converter(c)),
            (None, Value::Bool(b, _)) => Ok(BoolExpr::Literal(b)),
            (None, other) => Err(format!("not a condition: {other:?}")),
        }
    }
}

fn parser(text: &str) -> Result<P, CompileError> {
    let toks = lex(text).map_err(|m| CompileError::new(text, 1, m))?;
    Ok(P {
        toks,
        pos: 0,
        end: text.len(),
    })
}

pub(crate) fn statement(text: &str) -> Result<Statement, CompileError> {
    let mut p = parser(text)?;
    let err = |m: String| CompileError::new(text, 1, m);
    let span = p.span();
    let Some(Tok::Ident(name)) = p.next() else {
        return Err(err("expected a function".into()));
    };
    let call = p.call(name, span).map_err(err)?;
    let where_clause = if p.is_word("where") {
        p.pos += 1;
        Some(p.bool_expr().map_err(err)?)
    } else {
        None
    };
    if p.peek().is_some() {
        return Err(err(format!("trailing {:?}", p.peek())));
    }
    Ok(Statement { call, where_clause })
}

pub(crate) fn condition(text: &str) -> Result<BoolExpr, CompileError> {
    let mut p = parser(text)?;
    let b = p.bool_expr().map_err(|m| CompileError::new(text, 1, m))?;
    if p.peek().is_some() {
        return Err(CompileError::new(text, 1, "trailing tokens"));
    }
    Ok(b)
}
