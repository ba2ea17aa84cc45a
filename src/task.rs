//! Tasks that live exactly as long as their owner.

use tokio::task::JoinHandle;

/// Aborts its task when dropped: for background work (a watcher, a subscriber's reader)
/// that must end with the value that started it.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
