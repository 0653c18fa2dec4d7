//! `par_map`: run a function over `0..n` on a few scoped threads (no thread pool, no dependency).

/// Jobs shorter than this run on the calling thread.
pub(crate) const PARALLEL_MIN: usize = 256;

/// Most threads used: the work is syscalls and hashing, which stop scaling early.
const MAX_THREADS: usize = 4;

/// The CPUs this process may use, asked once: `available_parallelism` reads three cgroup and
/// proc files on every call, which cost more than a small `par_map` itself.
pub(crate) fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |t| t.get()))
}

/// `f(0), f(1), ... f(n-1)` in order, spread over up to four threads when `n` is large enough.
pub(crate) fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    par_map_min(n, PARALLEL_MIN, f)
}

/// Like [`par_map`], going parallel from `min` items (for items that each cost a lot).
pub(crate) fn par_map_min<T: Send>(n: usize, min: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if n < min.max(2) {
        return (0..n).map(f).collect();
    }
    let threads = cpus().min(MAX_THREADS);
    if threads < 2 {
        return (0..n).map(f).collect();
    }
    let chunk = n.div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                s.spawn(move || (start..(start + chunk).min(n)).map(f).collect::<Vec<T>>())
            })
            .collect();
        // A panic in `f` is a bug in this crate; re-raise it rather than invent results.
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order() {
        for n in [0, 1, 5, 255, 256, 1000, 1001] {
            assert_eq!(
                par_map(n, |i| i * 2),
                (0..n).map(|i| i * 2).collect::<Vec<_>>()
            );
        }
    }
}
