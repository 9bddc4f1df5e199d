//! The rolling window: fixed buckets of counts that expire as time moves on,
//! so memory does not grow with traffic, and recording a call takes a few
//! atomic operations and no lock.
//!
//! Each counter is one `AtomicU64` holding the bucket period it counts for
//! (its epoch, 32 bits) and the count (32 bits). A counter found holding an
//! older epoch is restarted with a compare-and-swap, so expiry needs no
//! sweeping and no lock: whoever records first in a new period resets it.
//!
//! Epochs wrap at 32 bits. A counter left untouched for 2^31 bucket periods
//! (68 years of 1 s buckets; 24 days of the shortest, 1 ms ones) may drop
//! one count when it next restarts; nothing else depends on the wrap.
//!
//! Each bucket is split into stripes, one cache line each, and a thread
//! always records into its own stripe: threads calling through one circuit
//! do not fight over a cache line. Reading the totals sums every stripe;
//! that is only done when a call fails, or for operators.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use strength_reduce::StrengthReducedU64;

use super::BreakerConfig;

/// Calls counted over a circuit's rolling window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Calls whose outcome was a success.
    pub successes: u64,
    /// Calls whose outcome was a failure (other than a timeout).
    pub failures: u64,
    /// Calls that timed out; they count as failures in the failure rate.
    pub timeouts: u64,
    /// Calls, of any outcome, that took at least the slow-call duration.
    pub slow_calls: u64,
    /// Calls refused because the circuit was open (or forced open). They
    /// never reached the service, so they are in no rate.
    pub rejections: u64,
    /// Calls refused while half-open because every trial slot was taken.
    /// Not in any rate either.
    pub short_circuits: u64,
}

impl WindowCounts {
    /// The calls that reached the service.
    pub fn calls(&self) -> u64 {
        self.successes + self.failures + self.timeouts
    }

    /// (failures + timeouts) / calls, in percent; 0 with no calls.
    pub fn failure_rate_percent(&self) -> f64 {
        percent(self.failures + self.timeouts, self.calls())
    }

    /// slow calls / calls, in percent; 0 with no calls.
    pub fn slow_call_rate_percent(&self) -> f64 {
        percent(self.slow_calls, self.calls())
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    match whole {
        0 => 0.0,
        whole => part as f64 * 100.0 / whole as f64,
    }
}

/// What a window counts, one counter each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tally {
    Success = 0,
    Failure = 1,
    Timeout = 2,
    SlowCall = 3,
    Rejection = 4,
    ShortCircuit = 5,
}

const TALLIES: usize = 6;

/// One stripe of one bucket: a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Cell {
    counters: [AtomicU64; TALLIES],
}

/// One stripe of the totals since the start: a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Totals {
    counters: [AtomicU64; TALLIES],
}

/// Counts over the last `config.window`, in `config.buckets` buckets, and
/// since the start (never reset, for monotonic metrics).
#[derive(Debug)]
pub(crate) struct Window {
    /// The bucket length in nanoseconds. Dividing by it, and by the bucket
    /// count, with strength-reduced divisors (two multiplications each)
    /// instead of hardware divisions made recording a call a quarter
    /// cheaper.
    bucket_nanos: StrengthReducedU64,
    buckets: StrengthReducedU64,
    /// A power of two.
    stripes: usize,
    /// `buckets * stripes` cells, bucket-major.
    cells: Box<[Cell]>,
    /// `stripes` totals since the start.
    totals: Box<[Totals]>,
}

impl Window {
    pub(crate) fn new(config: &BreakerConfig) -> Self {
        let buckets = u64::from(config.buckets);
        let stripes = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, 16)
            .next_power_of_two();
        Self {
            bucket_nanos: StrengthReducedU64::new((config.bucket_len().as_nanos() as u64).max(1)),
            buckets: StrengthReducedU64::new(buckets),
            stripes,
            cells: (0..buckets as usize * stripes)
                .map(|_| Cell::default())
                .collect(),
            totals: (0..stripes).map(|_| Totals::default()).collect(),
        }
    }

    /// Counts one `tally` at `now` (nanoseconds since the circuit began).
    pub(crate) fn record(&self, now: u64, tally: Tally) {
        let epoch = now / self.bucket_nanos;
        let tag = epoch as u32;
        let bucket = (epoch % self.buckets) as usize;
        let stripe = stripe(self.stripes);
        self.totals[stripe].counters[tally as usize].fetch_add(1, Relaxed);
        let counter = &self.cells[bucket * self.stripes + stripe].counters[tally as usize];
        let mut current = counter.load(Relaxed);
        loop {
            let current_tag = (current >> 32) as u32;
            // The counter is this period's, or a later one's (this thread
            // read the clock, then lost the CPU for a whole window): add.
            if current_tag == tag || is_after(current_tag, tag) {
                counter.fetch_add(1, Relaxed);
                return;
            }
            // The counter still holds an expired period: start it afresh.
            match counter.compare_exchange_weak(current, pack(tag, 1), Relaxed, Relaxed) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// The sum of the counts that have not expired at `now`.
    pub(crate) fn totals(&self, now: u64) -> WindowCounts {
        let tag = (now / self.bucket_nanos) as u32;
        let mut sums = [0u64; TALLIES];
        for cell in self.cells.iter() {
            for (sum, counter) in sums.iter_mut().zip(&cell.counters) {
                let value = counter.load(Relaxed);
                let age = tag.wrapping_sub((value >> 32) as u32);
                if u64::from(age) < self.buckets.get() {
                    *sum += value & u64::from(u32::MAX);
                }
            }
        }
        counts(sums)
    }

    /// The counts since the start, which nothing resets.
    pub(crate) fn lifetime(&self) -> WindowCounts {
        let mut sums = [0u64; TALLIES];
        for totals in self.totals.iter() {
            for (sum, counter) in sums.iter_mut().zip(&totals.counters) {
                *sum += counter.load(Relaxed);
            }
        }
        counts(sums)
    }

    /// Forgets every count of the window, at `now` (not the totals since
    /// the start).
    pub(crate) fn clear(&self, now: u64) {
        // A count of 0, tagged with an epoch that has just expired.
        let expired = pack(
            ((now / self.bucket_nanos) as u32).wrapping_sub(self.buckets.get() as u32),
            0,
        );
        for cell in self.cells.iter() {
            for counter in &cell.counters {
                counter.store(expired, Relaxed);
            }
        }
    }
}

fn counts(sums: [u64; TALLIES]) -> WindowCounts {
    WindowCounts {
        successes: sums[Tally::Success as usize],
        failures: sums[Tally::Failure as usize],
        timeouts: sums[Tally::Timeout as usize],
        slow_calls: sums[Tally::SlowCall as usize],
        rejections: sums[Tally::Rejection as usize],
        short_circuits: sums[Tally::ShortCircuit as usize],
    }
}

fn pack(tag: u32, count: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(count)
}

/// Whether epoch tag `a` is later than `b`, across the 32-bit wrap.
fn is_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// This thread's stripe. Threads take stripes in turn as they first
/// record, so a handful of threads never share one.
fn stripe(stripes: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Relaxed);
    }
    STRIPE.with(|stripe| *stripe) & (stripes - 1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn window() -> Window {
        Window::new(&BreakerConfig {
            window: Duration::from_secs(10),
            buckets: 10,
            ..BreakerConfig::default()
        })
    }

    #[test]
    fn counts_expire_one_bucket_at_a_time() {
        let window = window();
        window.record(0, Tally::Failure);
        window.record(5 * SECOND, Tally::Success);
        window.record(5 * SECOND, Tally::Success);

        let totals = window.totals(5 * SECOND);
        assert_eq!((totals.successes, totals.failures), (2, 1));
        // Still there at 9.9s; gone at 10s, when its bucket rolls off.
        assert_eq!(window.totals(10 * SECOND - 1).failures, 1);
        let totals = window.totals(10 * SECOND);
        assert_eq!((totals.successes, totals.failures), (2, 0));
        assert_eq!(window.totals(15 * SECOND), WindowCounts::default());
    }

    #[test]
    fn a_reused_bucket_starts_empty() {
        let window = window();
        for _ in 0..3 {
            window.record(0, Tally::Failure);
        }
        // The same bucket, one whole window later.
        window.record(10 * SECOND, Tally::Success);
        let totals = window.totals(10 * SECOND);
        assert_eq!((totals.successes, totals.failures), (1, 0));
    }

    #[test]
    fn each_tally_is_counted_apart() {
        let window = window();
        for tally in [
            Tally::Success,
            Tally::Failure,
            Tally::Failure,
            Tally::Timeout,
            Tally::SlowCall,
            Tally::Rejection,
            Tally::Rejection,
            Tally::ShortCircuit,
        ] {
            window.record(SECOND, tally);
        }
        let totals = window.totals(SECOND);
        assert_eq!(
            totals,
            WindowCounts {
                successes: 1,
                failures: 2,
                timeouts: 1,
                slow_calls: 1,
                rejections: 2,
                short_circuits: 1,
            }
        );
        assert_eq!(totals.calls(), 4);
        assert_eq!(totals.failure_rate_percent(), 75.0);
        assert_eq!(totals.slow_call_rate_percent(), 25.0);
    }

    #[test]
    fn a_late_record_is_not_lost() {
        let window = window();
        window.record(20 * SECOND, Tally::Success);
        // A thread that read the clock a whole window ago records now.
        window.record(10 * SECOND, Tally::Success);
        assert_eq!(window.totals(20 * SECOND).successes, 2);
    }

    #[test]
    fn clear_forgets_the_window_but_not_the_lifetime() {
        let window = window();
        window.record(SECOND, Tally::Failure);
        window.clear(SECOND);
        assert_eq!(window.totals(SECOND), WindowCounts::default());
        window.record(SECOND, Tally::Failure);
        assert_eq!(window.totals(SECOND).failures, 1);
        assert_eq!(window.lifetime().failures, 2);
    }

    #[test]
    fn the_lifetime_counts_outlast_the_window() {
        let window = window();
        window.record(0, Tally::Success);
        window.record(60 * SECOND, Tally::Rejection);
        assert_eq!(window.totals(60 * SECOND).successes, 0);
        let lifetime = window.lifetime();
        assert_eq!((lifetime.successes, lifetime.rejections), (1, 1));
    }

    #[test]
    fn threads_count_into_their_own_stripes_and_nothing_is_lost() {
        let window = std::sync::Arc::new(window());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let window = window.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        window.record(SECOND, Tally::Success);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(window.totals(SECOND).successes, 40_000);
    }

    #[test]
    fn the_rate_has_no_division_by_zero() {
        assert_eq!(WindowCounts::default().failure_rate_percent(), 0.0);
        assert_eq!(WindowCounts::default().slow_call_rate_percent(), 0.0);
    }
}
