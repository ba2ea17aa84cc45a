//! Bounds the decoder enforces on what a server may send.

/// Limits on a single decoded frame. Input beyond them is a protocol error, so a hostile or
/// broken server cannot make the client allocate without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest bulk string, verbatim string or blob error, in bytes. Default 512 MiB, Redis's
    /// own `proto-max-bulk-len` default.
    pub max_bulk_len: usize,
    /// Most elements in one array, set, push or map (pairs count twice). Default 2^31.
    pub max_aggregate_len: usize,
    /// Deepest nesting of aggregates. Default 128.
    pub max_depth: usize,
    /// Largest whole frame, in bytes. Default 1 GiB.
    pub max_frame_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_aggregate_len: 1 << 31,
            max_depth: 128,
            max_frame_size: 1024 * 1024 * 1024,
        }
    }
}
