//! Steal time: how long the hypervisor kept this VM's virtual CPUs from running, per CPU,
//! from the `steal` column of /proc/stat (in ticks of 10 ms). The soak shows it beside its
//! silences: a master whose advert interval grew to 20 ms while a virtual CPU stood still
//! for as long is the machine, not carpd.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Background;

/// Between two readings of /proc/stat.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// /proc/stat's time unit (USER_HZ, 100 on Linux).
const TICK_MS: f64 = 10.0;

/// What the recorder saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Steal {
    /// Stolen from all CPUs together over the whole recording.
    pub total_ms: f64,
    /// The most stolen from one CPU between two consecutive readings (about 10 ms apart,
    /// longer when the recorder itself was held up): the longest stall seen, to a tick.
    pub longest_ms: f64,
}

/// Records [`Steal`] in a background thread until [`StealRecorder::stop`].
pub struct StealRecorder {
    _thread: Background,
    seen: Arc<Mutex<Steal>>,
}

impl StealRecorder {
    pub fn start() -> StealRecorder {
        let seen = Arc::new(Mutex::new(Steal::default()));
        let shared = Arc::clone(&seen);
        let thread = Background::spawn(move |stop| {
            let mut last = read();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(SAMPLE_EVERY);
                let now = read();
                let mut s = shared.lock().expect("steal recorder lock");
                for (before, after) in last.iter().zip(&now) {
                    let stolen = after.saturating_sub(*before) as f64 * TICK_MS;
                    s.total_ms += stolen;
                    s.longest_ms = s.longest_ms.max(stolen);
                }
                last = now;
            }
        });
        StealRecorder {
            _thread: thread,
            seen,
        }
    }

    /// Stops recording; what it saw.
    pub fn stop(self) -> Steal {
        let seen = Arc::clone(&self.seen);
        drop(self);
        *seen.lock().expect("steal recorder lock")
    }
}

/// The steal ticks of each CPU, in CPU order (empty if /proc/stat cannot be read).
fn read() -> Vec<u64> {
    std::fs::read_to_string("/proc/stat")
        .map(|text| per_cpu_steal(&text))
        .unwrap_or_default()
}

/// The 8th value (steal) of every `cpuN` line.
fn per_cpu_steal(stat: &str) -> Vec<u64> {
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .filter_map(|l| l.split_whitespace().nth(8)?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::per_cpu_steal;

    #[test]
    fn steal_is_the_eighth_value_of_each_cpu_line() {
        let stat = "cpu  2397511 5204 841470 3607316 30503 0 139543 4962 0 0\n\
                    cpu0 1120604 2427 419664 1886964 9654 0 70615 2523 0 0\n\
                    cpu1 1276907 2777 421806 1720351 20849 0 68927 2439 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(per_cpu_steal(stat), vec![2523, 2439]);
    }
}
