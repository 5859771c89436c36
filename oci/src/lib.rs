//! OCI runtime-spec handling: loading and checking a bundle's config.json,
//! the state a runtime keeps per container, and the state JSON it reports.

pub mod bundle;
pub mod caps;
pub mod state;

/// Why a bundle or a container's state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("container does not exist")]
    NotFound,
    #[error("container with id {0} already exists")]
    Exists(String),
}

pub type Result<T> = std::result::Result<T, OciError>;

pub(crate) fn io_err(path: &std::path::Path, source: std::io::Error) -> OciError {
    OciError::Io {
        path: path.display().to_string(),
        source,
    }
}
