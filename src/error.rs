//! One error type for the whole tool. Every error a user can cause maps to exit
//! code 2 and prints as one line naming the file, column or flag at fault.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Flags or config that do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// A file that cannot be read or does not hold what was expected.
    #[error("{path}: {message}")]
    Input { path: String, message: String },
    /// Writing an output failed.
    #[error("{path}: {message}")]
    Output { path: String, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }

    pub fn input(path: impl AsRef<Path>, message: impl std::fmt::Display) -> Self {
        Error::Input {
            path: path.as_ref().display().to_string(),
            message: one_line(&message.to_string()),
        }
    }

    pub fn output(path: impl AsRef<Path>, message: impl std::fmt::Display) -> Self {
        Error::Output {
            path: path.as_ref().display().to_string(),
            message: one_line(&message.to_string()),
        }
    }
}

/// Library errors (polars in particular) span several lines; a CI log wants one.
pub fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for part in message.split('\n').map(str::trim).filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_messages_become_one_line() {
        let e = Error::input("a.parquet", "bad magic\n\n  expected PAR1\n");
        assert_eq!(e.to_string(), "a.parquet: bad magic; expected PAR1");
    }
}
