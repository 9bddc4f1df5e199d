//! The rolling window: fixed buckets of counts that expire as time moves on,
//! so memory does not grow with traffic.

use tokio::time::Instant;

use super::BreakerConfig;

/// Calls counted over a circuit's rolling window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Calls whose outcome was a success.
    pub successes: u64,
    /// Calls whose outcome was a failure.
    pub failures: u64,
    /// Calls rejected while the circuit was open. They never reached the
    /// service, so they are not part of the failure rate.
    pub rejections: u64,
}

impl WindowCounts {
    /// The calls that reached the service.
    pub fn calls(&self) -> u64 {
        self.successes + self.failures
    }

    /// failures / (successes + failures), in percent; 0 with no calls.
    pub fn failure_rate_percent(&self) -> f64 {
        match self.calls() {
            0 => 0.0,
            calls => self.failures as f64 * 100.0 / calls as f64,
        }
    }

    fn add(&mut self, other: &WindowCounts) {
        self.successes += other.successes;
        self.failures += other.failures;
        self.rejections += other.rejections;
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// Which bucket period since `Window::start` these counts belong to; a
    /// bucket whose epoch is not the current one holds expired counts.
    epoch: u64,
    counts: WindowCounts,
}

/// Counts over the last `config.window`, in `config.buckets` buckets.
#[derive(Debug)]
pub(crate) struct Window {
    start: Instant,
    bucket_nanos: u128,
    buckets: Box<[Bucket]>,
}

impl Window {
    pub(crate) fn new(config: &BreakerConfig, now: Instant) -> Self {
        Self {
            start: now,
            bucket_nanos: config.bucket_len().as_nanos().max(1),
            buckets: vec![Bucket::default(); config.buckets as usize].into_boxed_slice(),
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.start).as_nanos() / self.bucket_nanos) as u64
    }

    /// The counts of the current bucket, emptied first if they expired.
    pub(crate) fn current(&mut self, now: Instant) -> &mut WindowCounts {
        let epoch = self.epoch(now);
        let len = self.buckets.len() as u64;
        let bucket = &mut self.buckets[(epoch % len) as usize];
        if bucket.epoch != epoch {
            *bucket = Bucket {
                epoch,
                counts: WindowCounts::default(),
            };
        }
        &mut bucket.counts
    }

    /// The sum of the buckets that have not expired.
    pub(crate) fn totals(&self, now: Instant) -> WindowCounts {
        let epoch = self.epoch(now);
        let len = self.buckets.len() as u64;
        let mut totals = WindowCounts::default();
        for bucket in self.buckets.iter() {
            if bucket.epoch <= epoch && epoch - bucket.epoch < len {
                totals.add(&bucket.counts);
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            window: Duration::from_secs(10),
            buckets: 10,
            ..BreakerConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn counts_expire_one_bucket_at_a_time() {
        let mut window = Window::new(&config(), Instant::now());
        window.current(Instant::now()).failures += 1;
        tokio::time::advance(Duration::from_secs(5)).await;
        window.current(Instant::now()).successes += 2;

        let totals = window.totals(Instant::now());
        assert_eq!((totals.successes, totals.failures), (2, 1));

        // 10s after the failure its bucket has rolled off; the successes remain.
        tokio::time::advance(Duration::from_secs(5)).await;
        let totals = window.totals(Instant::now());
        assert_eq!((totals.successes, totals.failures), (2, 0));

        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(window.totals(Instant::now()), WindowCounts::default());
    }

    #[tokio::test(start_paused = true)]
    async fn a_reused_bucket_starts_empty() {
        let mut window = Window::new(&config(), Instant::now());
        window.current(Instant::now()).failures += 3;
        // The same slot, one whole window later.
        tokio::time::advance(Duration::from_secs(10)).await;
        window.current(Instant::now()).successes += 1;
        let totals = window.totals(Instant::now());
        assert_eq!((totals.successes, totals.failures), (1, 0));
    }

    #[test]
    fn the_rate_has_no_division_by_zero() {
        assert_eq!(WindowCounts::default().failure_rate_percent(), 0.0);
        let counts = WindowCounts {
            successes: 1,
            failures: 3,
            rejections: 50,
        };
        assert_eq!(counts.failure_rate_percent(), 75.0);
    }
}
