//! Where statement texts become syntax trees. The parser lives in its own module (written
//! separately); until it is merged, only the test build has one.

use crate::ast;
use crate::error::CompileError;

pub(crate) fn statement(text: &str) -> Result<ast::Statement, CompileError> {
    #[cfg(test)]
    {
        crate::testparse::statement(text)
    }
    #[cfg(not(test))]
    {
        Err(unavailable(text))
    }
}

pub(crate) fn condition(text: &str) -> Result<ast::BoolExpr, CompileError> {
    #[cfg(test)]
    {
        crate::testparse::condition(text)
    }
    #[cfg(not(test))]
    {
        Err(unavailable(text))
    }
}

#[cfg(not(test))]
fn unavailable(text: &str) -> CompileError {
    CompileError::new(text, 1, "the OTTL parser is not built into this version")
}
