//! The bounded queue between the monitor and one sink's writer thread. Pushing never waits:
//! when the queue is full the record is dropped and counted, and the count is taken by the
//! writer to report the loss once the sink keeps up again.

use std::{
    collections::VecDeque,
    sync::{Condvar, Mutex, MutexGuard},
    time::{Duration, Instant},
};

pub struct Queue<T> {
    inner: Mutex<Inner<T>>,
    ready: Condvar,
    capacity: usize,
}

struct Inner<T> {
    items: VecDeque<T>,
    dropped: u64,
    closed: bool,
    /// The writer holds an item it took and has not finished with.
    busy: bool,
}

/// What [`Queue::pop`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Pop<T> {
    Item(T),
    /// Nothing came within the timeout.
    Empty,
    /// Closed and drained: the writer ends.
    Closed,
}

impl<T> Queue<T> {
    pub fn new(capacity: usize) -> Queue<T> {
        Queue {
            inner: Mutex::new(Inner {
                items: VecDeque::with_capacity(capacity.min(1024)),
                dropped: 0,
                closed: false,
                busy: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // A writer that panicked holding the lock left consistent data (plain pushes/pops).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `item` unless the queue is full or closed; `false` means it was dropped (and
    /// counted, when full).
    pub fn push(&self, item: T) -> bool {
        let mut g = self.lock();
        if g.closed {
            return false;
        }
        if g.items.len() >= self.capacity {
            g.dropped += 1;
            return false;
        }
        g.items.push_back(item);
        drop(g);
        self.ready.notify_one();
        true
    }

    /// The next item, waiting at most `timeout`. Marks the writer busy until the next call
    /// (or [`Queue::idle`]).
    pub fn pop(&self, timeout: Duration) -> Pop<T> {
        let deadline = Instant::now().checked_add(timeout);
        let mut g = self.lock();
        g.busy = false;
        loop {
            if let Some(item) = g.items.pop_front() {
                g.busy = true;
                return Pop::Item(item);
            }
            if g.closed {
                return Pop::Closed;
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return Pop::Empty;
            }
            g = self
                .ready
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The writer finished its item without asking for the next one yet.
    pub fn idle(&self) {
        self.lock().busy = false;
    }

    /// The records dropped since the last call.
    pub fn take_dropped(&self) -> u64 {
        std::mem::take(&mut self.lock().dropped)
    }

    /// Puts back a count taken by [`Queue::take_dropped`] that could not be reported.
    pub fn add_dropped(&self, n: u64) {
        self.lock().dropped += n;
    }

    /// Nothing queued and the writer not busy.
    pub fn is_settled(&self) -> bool {
        let g = self.lock();
        g.items.is_empty() && !g.busy
    }

    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// No more pushes; the writer drains what is queued, then gets [`Pop::Closed`].
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn full_queue_drops_and_counts_without_waiting() {
        let q = Queue::new(3);
        let t = Instant::now();
        let pushed: Vec<bool> = (0..10).map(|i| q.push(i)).collect();
        assert!(t.elapsed() < Duration::from_millis(100));
        assert_eq!(
            pushed,
            [
                true, true, true, false, false, false, false, false, false, false
            ]
        );
        assert_eq!(q.take_dropped(), 7);
        assert_eq!(q.take_dropped(), 0, "taken once");
        assert_eq!(q.pop(Duration::ZERO), Pop::Item(0));
        assert!(q.push(10), "room again");
        assert_eq!(q.pop(Duration::ZERO), Pop::Item(1));
        assert_eq!(q.pop(Duration::ZERO), Pop::Item(2));
        assert_eq!(q.pop(Duration::ZERO), Pop::Item(10));
        assert_eq!(q.pop(Duration::from_millis(10)), Pop::Empty);
        q.add_dropped(2);
        assert_eq!(q.take_dropped(), 2);
    }

    #[test]
    fn close_drains_then_ends() {
        let q = Queue::new(4);
        q.push(1);
        q.push(2);
        q.close();
        assert!(!q.push(3), "closed");
        assert_eq!(q.take_dropped(), 0, "a push after close is not a drop");
        assert_eq!(q.pop(Duration::ZERO), Pop::Item(1));
        assert!(!q.is_settled(), "busy with item 1");
        assert_eq!(q.pop(Duration::ZERO), Pop::Item(2));
        assert_eq!(q.pop(Duration::from_secs(5)), Pop::Closed);
        assert!(q.is_settled());
    }

    #[test]
    fn pop_wakes_on_push_from_another_thread() {
        let q = Arc::new(Queue::new(1));
        let q2 = q.clone();
        let th = std::thread::spawn(move || q2.pop(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        let t = Instant::now();
        q.push(7);
        assert_eq!(th.join().unwrap(), Pop::Item(7));
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
