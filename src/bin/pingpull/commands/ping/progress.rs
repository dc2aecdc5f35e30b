//! The progress line `ping` draws on a terminal's stderr: users delivered of all, those
//! waiting to retry and those failed, the delivery rate and the time left.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Redrawn this often even without events, so the time left keeps counting down.
pub(super) const TICK: Duration = Duration::from_millis(200);

/// The progress line, redrawn in place.
pub(super) struct Progress {
    bar: ProgressBar,
    style: ProgressStyle,
}

impl Progress {
    /// Starts drawing for `users` users, with a deadline at `until`.
    pub(super) fn start(users: u64, until: Instant) -> Self {
        let template =
            "{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} delivered, {msg}, {rate}/s, {left} left";
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "left",
                move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let left = until.saturating_duration_since(Instant::now());
                    let _ = write!(out, "{:.0} s", left.as_secs_f64().ceil());
                },
            )
            // Deliveries per second since the start: indicatif's own rate follows the
            // last few updates and swings with each burst of retries.
            .with_key(
                "rate",
                |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let seconds = state.elapsed().as_secs_f64();
                    let rate = if seconds > 0.0 {
                        state.pos() as f64 / seconds
                    } else {
                        0.0
                    };
                    let _ = write!(out, "{rate:.0}");
                },
            )
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(users), ProgressDrawTarget::stderr());
        bar.set_style(style.clone());
        bar.set_message("retrying 0, failed 0");
        bar.enable_steady_tick(TICK);
        crate::logging::progress_shown(&bar);
        Self { bar, style }
    }

    /// Shows the counts after an event.
    pub(super) fn update(&self, delivered: usize, retrying: usize, failed: usize) {
        self.bar.set_position(delivered as u64);
        self.bar
            .set_message(format!("retrying {retrying}, failed {failed}"));
    }

    /// Runs `print` with the line cleared, then redraws it.
    pub(super) fn suspend(&self, print: impl FnOnce()) {
        self.bar.suspend(print);
    }

    /// Clears the line and stops drawing it, so that logs written meanwhile (the
    /// shutdown's) stand alone; [`finish`](Self::finish) draws it again.
    pub(super) fn hide(&self) {
        crate::logging::progress_gone();
        self.bar.finish_and_clear();
    }

    /// Draws the final counts and leaves them on screen: a new bar, since a finished
    /// one draws no more, with the same style and the time elapsed.
    pub(super) fn finish(&self, delivered: usize, failed: usize) {
        let last = ProgressBar::with_draw_target(self.bar.length(), ProgressDrawTarget::stderr())
            .with_style(self.style.clone())
            .with_elapsed(self.bar.elapsed())
            .with_position(delivered as u64)
            .with_message(format!("retrying 0, failed {failed}"));
        last.abandon();
    }
}
