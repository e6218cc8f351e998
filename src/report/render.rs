//! The one interface of every renderer: a document in, its bytes as a `String` out.
//!
//! Renderers only format. They read no clock, no environment and no terminal (colour and
//! verbosity are options the caller sets), so the same document and options always give the
//! same bytes. The document is a type parameter so that the same renderers serve a
//! [`Report`](super::Report) and `compare`'s `Comparison`: [`Json`](super::Json) renders
//! anything serializable, and each text renderer implements `Render` for the documents it
//! knows.

/// Why a document could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The JSON serializer failed (a map with non-string keys, say).
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Formats a document `D`.
pub trait Render<D: ?Sized> {
    /// The document, rendered.
    fn render(&self, doc: &D) -> Result<String, RenderError>;
}
