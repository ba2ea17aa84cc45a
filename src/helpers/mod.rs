//! Carmine's helpers beside the generated API: INFO as maps, SCAN families as streams,
//! compare-and-set and swap.

mod cas;
mod info;
mod scan;

pub use cas::{compare_and_set, swap};
pub use info::{Info, info_map};
pub use scan::{hscan_stream, scan_stream, sscan_stream, zscan_stream};
