//! The state tree's one error type: a missing or damaged record, a key
//! written twice in a batch, or a caller that broke the fetch protocol.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmtError {
    /// A node the tree refers to is not in the store (damaged or pruned).
    MissingNode(Vec<u8>),
    /// Stored bytes that are not a node, or a node that contradicts its parent.
    BadNode(String),
    /// Two updates for the same key in one batch.
    DuplicateKey,
    /// `supply` got a different number of values than `wanted` returned.
    Protocol(String),
}

impl std::fmt::Display for SmtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmtError::MissingNode(k) => write!(f, "state tree node missing: {}", hex(k)),
            SmtError::BadNode(m) => write!(f, "damaged state tree node: {m}"),
            SmtError::DuplicateKey => write!(f, "a key is written twice in one batch"),
            SmtError::Protocol(m) => write!(f, "state tree update protocol: {m}"),
        }
    }
}

pub(super) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
