//! A single progress line on stderr, rewritten in place while a long step runs.

use std::io::Write;
use std::time::{Duration, Instant};

/// Reports `done/total` for one step, at most every 200 ms.
pub(crate) struct Progress {
    step: &'static str,
    total: usize,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub(crate) fn new(step: &'static str, total: usize) -> Self {
        let now = Instant::now();
        let p = Self {
            step,
            total,
            started: now,
            last: now - Duration::from_secs(1),
        };
        p.draw(0);
        p
    }

    pub(crate) fn update(&mut self, done: usize) {
        if self.last.elapsed() >= Duration::from_millis(200) || done == self.total {
            self.last = Instant::now();
            self.draw(done);
        }
    }

    fn draw(&self, done: usize) {
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r\x1b[2K[{:>6.1}s] {}: {done}/{}",
            self.started.elapsed().as_secs_f64(),
            self.step,
            self.total
        );
        let _ = err.flush();
    }

    pub(crate) fn finish(self) {
        self.draw(self.total);
        eprintln!();
    }
}
