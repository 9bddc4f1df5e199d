//! Request coalescing ("single flight"): concurrent identical requests share
//! one piece of work. The first caller leads and does it; the others follow
//! and receive a clone of its result.
//!
//! It is bounded (past a number of flights in the air, callers work alone)
//! and cancellation-safe: if the leader is dropped before it finishes (its
//! caller went away), its followers are woken and one of them leads anew;
//! nobody waits for work that will never end.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use tokio::sync::watch;

/// Flights of work by key. Shared behind an `Arc`: a lead keeps its
/// coalescer alive, so it can move into a background task.
#[derive(Debug)]
pub struct Coalescer<K, V> {
    flights: Mutex<HashMap<K, Flight<V>>>,
    max_flights: usize,
    followers: AtomicU64,
    next_id: AtomicU64,
}

/// One piece of work in the air: its result, when it comes, is sent on the
/// channel. The id tells this flight from a later one of the same key.
#[derive(Debug)]
struct Flight<V> {
    id: u64,
    result: watch::Receiver<Option<V>>,
}

impl<K, V> Coalescer<K, V>
where
    K: Clone + Eq + Hash,
    V: Clone,
{
    /// A coalescer of at most `max_flights` flights at once.
    pub fn new(max_flights: usize) -> Self {
        Self {
            flights: Mutex::default(),
            max_flights,
            followers: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
        }
    }

    /// Does `work` for `key`, or waits for the same work already in the air
    /// and returns a clone of its result.
    pub async fn run<F, Fut>(self: &Arc<Self>, key: K, work: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let mut work = Some(work);
        loop {
            match self.join(&key) {
                Join::Lead(lead) => {
                    let work = work.take().expect("a caller leads at most once");
                    let value = work().await;
                    lead.land(value.clone());
                    return value;
                }
                Join::Follow(mut result) => {
                    self.followers.fetch_add(1, Relaxed);
                    loop {
                        if let Some(value) = result.borrow_and_update().clone() {
                            return value;
                        }
                        if result.changed().await.is_err() {
                            // The leader was dropped before it finished:
                            // try again, perhaps as the leader.
                            break;
                        }
                    }
                }
                Join::Alone => {
                    let work = work.take().expect("a caller works at most once");
                    return work().await;
                }
            }
        }
    }

    /// Starts a flight for `key` if none is in the air; `None` if one is
    /// (or if there are too many). For work that nobody waits for, such as
    /// refreshing a cached answer in the background.
    pub fn try_lead(self: &Arc<Self>, key: &K) -> Option<Lead<K, V>> {
        match self.join(key) {
            Join::Lead(lead) => Some(lead),
            Join::Follow(_) | Join::Alone => None,
        }
    }

    /// Callers that received another's result, since the start.
    pub fn followers(&self) -> u64 {
        self.followers.load(Relaxed)
    }

    /// Flights in the air now.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    fn join(self: &Arc<Self>, key: &K) -> Join<K, V> {
        let mut flights = self.lock();
        if let Some(flight) = flights.get(key) {
            return Join::Follow(flight.result.clone());
        }
        if flights.len() >= self.max_flights {
            return Join::Alone;
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        let (sender, result) = watch::channel(None);
        flights.insert(key.clone(), Flight { id, result });
        Join::Lead(Lead {
            coalescer: Arc::clone(self),
            key: key.clone(),
            id,
            sender: Some(sender),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Flight<V>>> {
        // Nothing panics while holding the lock.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

enum Join<K: Eq + Hash, V> {
    Lead(Lead<K, V>),
    Follow(watch::Receiver<Option<V>>),
    Alone,
}

/// The leader's side of a flight. Landing sends the result to the
/// followers; dropping it unlanded wakes them to try again. Either way the
/// flight leaves the map, so the next caller starts afresh.
#[derive(Debug)]
pub struct Lead<K: Eq + Hash, V> {
    coalescer: Arc<Coalescer<K, V>>,
    key: K,
    id: u64,
    sender: Option<watch::Sender<Option<V>>>,
}

impl<K: Eq + Hash, V> Lead<K, V> {
    /// Hands the result to every follower.
    pub fn land(mut self, value: V) {
        if let Some(sender) = self.sender.take() {
            // Nobody listening is fine.
            let _ = sender.send(Some(value));
        }
    }
}

impl<K: Eq + Hash, V> Drop for Lead<K, V> {
    fn drop(&mut self) {
        let mut flights = self
            .coalescer
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if flights
            .get(&self.key)
            .is_some_and(|flight| flight.id == self.id)
        {
            flights.remove(&self.key);
        }
        // The sender, if not landed, drops here: followers wake and retry.
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::atomic::AtomicUsize, time::Duration};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_hundred_identical_callers_share_one_piece_of_work() {
        let coalescer = Arc::new(Coalescer::<&str, u32>::new(100));
        let calls = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..100)
            .map(|_| {
                let (coalescer, calls) = (Arc::clone(&coalescer), Arc::clone(&calls));
                tokio::spawn(async move {
                    coalescer
                        .run("key", || async {
                            calls.fetch_add(1, Relaxed);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            7
                        })
                        .await
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), 7);
        }
        assert_eq!(calls.load(Relaxed), 1);
        assert_eq!(coalescer.followers(), 99);
        assert_eq!(coalescer.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn different_keys_do_not_share() {
        let coalescer = Arc::new(Coalescer::<u8, u8>::new(100));
        let (a, b) = tokio::join!(
            coalescer.run(1, || async { 1 }),
            coalescer.run(2, || async { 2 })
        );
        assert_eq!((a, b), (1, 2));
        assert_eq!(coalescer.followers(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_leader_hands_the_work_to_a_follower() {
        let coalescer = Arc::new(Coalescer::<&str, u32>::new(100));
        let leader = tokio::spawn({
            let coalescer = Arc::clone(&coalescer);
            async move { coalescer.run("key", std::future::pending::<u32>).await }
        });
        tokio::task::yield_now().await;
        let follower = tokio::spawn({
            let coalescer = Arc::clone(&coalescer);
            async move { coalescer.run("key", || async { 42 }).await }
        });
        tokio::task::yield_now().await;
        assert_eq!(coalescer.in_flight(), 1);

        leader.abort();
        // The follower is woken, leads, and does the work itself.
        assert_eq!(follower.await.unwrap(), 42);
        assert_eq!(coalescer.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_bound_callers_work_alone() {
        let coalescer = Arc::new(Coalescer::<u32, u32>::new(1));
        let held = coalescer.try_lead(&1).expect("the first flight");
        let calls = AtomicUsize::new(0);
        let value = coalescer
            .run(2, || async {
                calls.fetch_add(1, Relaxed);
                2
            })
            .await;
        assert_eq!(value, 2);
        assert_eq!(calls.load(Relaxed), 1);
        assert!(coalescer.try_lead(&3).is_none(), "no room for a third");
        drop(held);
        assert_eq!(coalescer.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn try_lead_declines_a_key_in_the_air() {
        let coalescer = Arc::new(Coalescer::<u32, u32>::new(10));
        let lead = coalescer.try_lead(&1).unwrap();
        assert!(coalescer.try_lead(&1).is_none());
        lead.land(1);
        assert!(coalescer.try_lead(&1).is_some());
    }
}
