//! Buffers for command arguments too long to live inline, kept for reuse on the thread that
//! let them go: a connection task drops each command's arguments once it has copied them
//! into its write buffer, and on the thread its callers run on (always, on the current-thread
//! runtime) the next command takes that buffer back instead of allocating.

use std::cell::RefCell;

/// Buffers kept per thread.
const KEPT: usize = 64;

/// Larger buffers are freed: the pool is for values of up to a few KiB, not for megabytes.
const KEPT_MAX_BYTES: usize = 4 * 1024;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer of at least `capacity` bytes, reused when this thread has one.
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    if capacity <= KEPT_MAX_BYTES {
        let reused = FREE
            .try_with(|free| {
                let mut free = free.borrow_mut();
                // Not one much larger than asked: a command holds its buffer while in flight.
                let fits = |b: &Vec<u8>| (capacity..=capacity.max(256) * 4).contains(&b.capacity());
                let at = free.iter().rposition(fits)?;
                Some(free.swap_remove(at))
            })
            .ok()
            .flatten();
        if let Some(buf) = reused {
            return buf;
        }
    }
    Vec::with_capacity(capacity)
}

/// Gives a buffer back for reuse on this thread (or frees it).
pub(crate) fn give(mut buf: Vec<u8>) {
    if buf.capacity() > KEPT_MAX_BYTES {
        return;
    }
    buf.clear();
    // During thread teardown the pool may be gone: the buffer is simply freed.
    let _ = FREE.try_with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < KEPT {
            free.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_and_large_ones_are_freed() {
        let buf = take(200);
        let addr = buf.as_ptr();
        give(buf);
        let again = take(100);
        assert_eq!(again.as_ptr(), addr);
        assert!(again.is_empty() && again.capacity() >= 200);
        // Too small for what is asked: a new one.
        give(again);
        let bigger = take(1000);
        assert!(bigger.capacity() >= 1000);
        assert_ne!(bigger.as_ptr(), addr);
        give(Vec::with_capacity(KEPT_MAX_BYTES + 1));
        assert!(FREE.with(|f| f.borrow().iter().all(|b| b.capacity() <= KEPT_MAX_BYTES)));
    }
}
