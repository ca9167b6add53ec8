//! The `server` scenario, after MLPerf LoadGen: requests arrive as a
//! Poisson process at a given rate; a dynamic batcher sends the queue to
//! the model when it holds `max_batch` requests or when the oldest has
//! waited `max_delay`; one worker runs one batch at a time. Latency is
//! arrival to completion, queueing included.
//!
//! Time is simulated around measured work: the arrival times are drawn up
//! front, and each batch's service time is the model's real run time for
//! that batch, measured when the batch is dispatched. The schedule is what
//! a one-worker server would see, without sleeping through idle time.

/// Arrival times (seconds from 0) of a Poisson process of `rate` per
/// second over `duration` seconds; `seed` makes it reproducible.
pub fn poisson_arrivals(rate: f64, duration: f64, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut uniform = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        // In (0, 1]: never 0, so the logarithm is finite.
        ((state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    };
    let mut t = 0.0;
    let mut out = Vec::new();
    loop {
        t += -uniform().ln() / rate;
        if t >= duration {
            return out;
        }
        out.push(t);
    }
}

/// What the server did.
#[derive(Debug, Default)]
pub struct Served {
    /// Arrival to completion, seconds, one per request.
    pub latencies: Vec<f64>,
    /// The size of every batch sent.
    pub batches: Vec<usize>,
    /// From the first arrival to the last completion, seconds.
    pub span: f64,
}

/// Runs the schedule: `service(b)` performs (or simulates) a batch of `b`
/// requests and returns how long it took, in seconds.
pub fn serve(
    arrivals: &[f64],
    max_batch: usize,
    max_delay: f64,
    service: &mut dyn FnMut(usize) -> Result<f64, String>,
) -> Result<Served, String> {
    let max_batch = max_batch.max(1);
    let mut served = Served::default();
    let (mut next, mut free_at) = (0usize, 0f64);
    while next < arrivals.len() {
        // The batch starts when the worker is free and either the queue is
        // full or the oldest request has waited long enough.
        let oldest = arrivals[next];
        let earliest = free_at.max(oldest);
        let full_at = arrivals
            .get(next + max_batch - 1)
            .copied()
            .unwrap_or(f64::INFINITY);
        let start = earliest.max(full_at.min(oldest + max_delay));
        let size = arrivals[next..]
            .iter()
            .take(max_batch)
            .take_while(|&&a| a <= start)
            .count()
            .max(1);
        let took = service(size)?;
        let done = start + took;
        for &a in &arrivals[next..next + size] {
            served.latencies.push(done - a);
        }
        served.batches.push(size);
        free_at = done;
        next += size;
    }
    served.span = free_at - arrivals.first().copied().unwrap_or(0.0);
    Ok(served)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_arrivals_come_at_the_asked_rate_with_exponential_gaps() {
        let a = poisson_arrivals(200.0, 100.0, 7);
        let rate = a.len() as f64 / 100.0;
        assert!((rate - 200.0).abs() < 200.0 * 0.03, "{rate}");
        // Exponential gaps: mean 1/rate, and about e^-1 of them longer.
        let gaps: Vec<f64> = a.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((mean - 0.005).abs() < 0.0002, "{mean}");
        let longer = gaps.iter().filter(|&&g| g > mean).count() as f64 / gaps.len() as f64;
        assert!((longer - (-1f64).exp()).abs() < 0.02, "{longer}");
        assert_eq!(a, poisson_arrivals(200.0, 100.0, 7));
    }

    #[test]
    fn the_batcher_waits_for_a_full_batch_or_the_delay() {
        // A fake model: 10 ms per batch whatever its size.
        let mut fake = |_: usize| Ok(0.010);
        // Four requests at once: one full batch of 4, served at once.
        let s = serve(&[0.0, 0.0, 0.0, 0.0], 4, 0.005, &mut fake).unwrap();
        assert_eq!(s.batches, vec![4]);
        assert!(s.latencies.iter().all(|&l| (l - 0.010).abs() < 1e-12));
        // Two requests, a batch of 4 never fills: sent after the delay.
        let s = serve(&[0.0, 0.001], 4, 0.005, &mut fake).unwrap();
        assert_eq!(s.batches, vec![2]);
        assert!((s.latencies[0] - 0.015).abs() < 1e-12 && (s.latencies[1] - 0.014).abs() < 1e-12);
        // A busy worker: requests queue behind the running batch.
        let s = serve(&[0.0, 0.002, 0.003], 1, 0.0, &mut fake).unwrap();
        assert_eq!(s.batches, vec![1, 1, 1]);
        let expected = [0.010, 0.018, 0.027];
        for (l, e) in s.latencies.iter().zip(expected) {
            assert!((l - e).abs() < 1e-12, "{l} vs {e}");
        }
        assert!((s.span - 0.030).abs() < 1e-12);
    }

    #[test]
    fn a_batch_never_exceeds_max_batch() {
        let arrivals: Vec<f64> = (0..100).map(|i| i as f64 * 1e-4).collect();
        let mut fake = |b: usize| Ok(0.001 * b as f64);
        let s = serve(&arrivals, 8, 0.002, &mut fake).unwrap();
        assert!(s.batches.iter().all(|&b| (1..=8).contains(&b)));
        assert_eq!(s.batches.iter().sum::<usize>(), 100);
        assert_eq!(s.latencies.len(), 100);
    }
}
