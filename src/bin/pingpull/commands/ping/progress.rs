//! The progress line `ping` draws on a terminal's stderr: users delivered of all, those
//! waiting to retry and those failed, the delivery rate and the time left.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Redrawn this often even without events, so the time left keeps counting down.
pub(super) const TICK: Duration = Duration::from_millis(200);

/// The line while delivery runs: the counts, the rate and the time left.
const RUNNING: &str =
    "{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} delivered, {msg}, {rate}/s, {left} left";

/// The line left on screen at the end: the same counts, and "done" where the time left
/// was (the deadline no longer matters).
const DONE: &str = "{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} delivered, {msg}, {rate}/s, done";

/// The progress line, redrawn in place.
pub(super) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// Starts drawing for `users` users, with a deadline at `until`.
    pub(super) fn start(users: u64, until: Instant) -> Self {
        let style = style(RUNNING).with_key(
            "left",
            move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
                let left = until.saturating_duration_since(Instant::now());
                let _ = write!(out, "{:.0} s", left.as_secs_f64().ceil());
            },
        );
        let bar = ProgressBar::with_draw_target(Some(users), ProgressDrawTarget::stderr());
        bar.set_style(style);
        bar.set_message("retrying 0, failed 0");
        bar.enable_steady_tick(TICK);
        crate::logging::progress_shown(&bar);
        Self { bar }
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

    /// Draws the final counts and leaves them on screen, saying done rather than the
    /// time left: a new bar, since a finished one draws no more, with the time elapsed.
    pub(super) fn finish(&self, delivered: usize, failed: usize) {
        let counts = (delivered, failed);
        let length = self.bar.length();
        draw_done(
            ProgressDrawTarget::stderr(),
            length,
            self.bar.elapsed(),
            counts,
        );
    }
}

/// Draws the last line on `target`: `delivered` of `length` and `failed`, after `elapsed`.
fn draw_done(
    target: ProgressDrawTarget,
    length: Option<u64>,
    elapsed: Duration,
    (delivered, failed): (usize, usize),
) {
    ProgressBar::with_draw_target(length, target)
        .with_style(style(DONE))
        .with_elapsed(elapsed)
        .with_position(delivered as u64)
        .with_message(format!("retrying 0, failed {failed}"))
        .abandon();
}

/// `template`'s style, with the delivery rate since the start as `{rate}`.
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        // Deliveries per second since the start: indicatif's own rate follows the last
        // few updates and swings with each burst of retries.
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
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::*;

    /// A terminal that keeps what is written to it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, line: &str) -> std::io::Result<()> {
            self.write_str(&format!("{line}\n"))
        }
        fn write_str(&self, text: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(text);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_last_line_says_done_not_the_time_left() {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        draw_done(target, Some(10), Duration::from_secs(4), (8, 2));
        let drawn = screen.0.lock().unwrap().clone();
        assert!(
            drawn
                .trim_end()
                .ends_with("8/10 delivered, retrying 0, failed 2, 2/s, done"),
            "{drawn:?}"
        );
        assert!(!drawn.contains("left"), "{drawn:?}");
    }
}
