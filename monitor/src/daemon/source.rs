//! Where records come from: the ring buffer in the daemon, a recorded sequence in tests.
//! Everything after this point (classification, scheduling, naming, evaluation) sees only
//! this trait, so the races of the real kernel can be replayed in plain unit tests.

use std::collections::VecDeque;

use crate::{decode::Record, events::Stream};

/// A source of decoded kernel records.
pub trait RecordSource {
    /// Appends the records available now, without waiting.
    fn drain_now(&mut self, out: &mut Vec<Record>);
}

impl RecordSource for Stream {
    fn drain_now(&mut self, out: &mut Vec<Record>) {
        Stream::drain_now(self, out)
    }
}

/// A recorded sequence, delivered in the batches it was recorded in: each `drain_now` gives
/// the next batch (records that "arrive" while an evaluation reads, in a test).
#[derive(Debug, Default)]
pub struct Recorded {
    batches: VecDeque<Vec<Record>>,
}

impl Recorded {
    pub fn new(batches: impl IntoIterator<Item = Vec<Record>>) -> Recorded {
        Recorded {
            batches: batches.into_iter().collect(),
        }
    }

    /// No batch left.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

impl RecordSource for Recorded {
    fn drain_now(&mut self, out: &mut Vec<Record>) {
        if let Some(b) = self.batches.pop_front() {
            out.extend(b);
        }
    }
}
