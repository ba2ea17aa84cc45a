//! The bounded hand-off from a subscriber's task to its consumer: never waits on the
//! consumer, never grows past its buffer, and always tells the consumer what it missed.

use tokio::sync::mpsc;

use super::message::Event;

pub(crate) struct Outbox {
    events: mpsc::Sender<Event>,
    /// Events dropped since the consumer last kept up.
    dropped: u64,
    /// A reconnect the consumer has not been told about.
    gap: bool,
}

impl Outbox {
    pub(crate) fn new(buffer: usize) -> (Outbox, mpsc::Receiver<Event>) {
        let (events, rx) = mpsc::channel(buffer.max(1));
        (
            Outbox {
                events,
                dropped: 0,
                gap: false,
            },
            rx,
        )
    }

    /// A sender for waiting on room (`reserve_owned`) or on the consumer leaving (`closed`).
    pub(crate) fn sender(&self) -> mpsc::Sender<Event> {
        self.events.clone()
    }

    pub(crate) fn notice_pending(&self) -> bool {
        self.gap || self.dropped > 0
    }

    pub(crate) fn reconnected(&mut self) {
        self.gap = true;
    }

    pub(crate) fn lost(&mut self, n: u64) {
        self.dropped += n;
    }

    /// The oldest pending notice: the gap first, then the lag count.
    pub(crate) fn take_notice(&mut self) -> Event {
        if self.gap {
            self.gap = false;
            Event::Reconnected
        } else {
            let n = self.dropped;
            self.dropped = 0;
            Event::Lagged(n)
        }
    }

    /// Hands an event over without waiting: a full buffer drops it and counts it. Pending
    /// notices go first, so the consumer learns of a gap or a lag before later messages.
    pub(crate) fn deliver(&mut self, event: Event) {
        while self.notice_pending() {
            let notice = if self.gap {
                Event::Reconnected
            } else {
                Event::Lagged(self.dropped)
            };
            if self.events.try_send(notice).is_err() {
                self.dropped += 1;
                return;
            }
            self.take_notice();
        }
        if self.events.try_send(event).is_err() {
            self.dropped += 1;
        }
    }
}
