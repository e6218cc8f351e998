//! The line parser. (Stub: to be written.)

use super::{Exposition, ParseError};

/// Parses a whole body. Never panics; the first bad line is returned as an error naming it.
pub fn parse(_text: &str) -> Result<Exposition<'_>, ParseError> {
    todo!("promtext::parse")
}
