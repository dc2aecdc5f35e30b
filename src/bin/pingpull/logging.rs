//! The binary's logs: to stderr, filtered by `RUST_LOG` when it is set, else at a level
//! each command chooses (with some targets quieter), raised one step by each `-v`.

use std::env::VarError;
use std::io::{IsTerminal as _, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Directive;

/// The levels `-v` steps through, quietest first.
const LEVELS: [LevelFilter; 4] = [
    LevelFilter::WARN,
    LevelFilter::INFO,
    LevelFilter::DEBUG,
    LevelFilter::TRACE,
];

/// Installs the stderr subscriber. `quietest` is the command's level without `-v`, and
/// `quieter` the targets held to a lower level then (any `-v` lifts them with the rest).
pub(crate) fn init(quietest: LevelFilter, quieter: &[(&str, LevelFilter)], verbose: u8) {
    let level = raised(quietest, verbose);
    let quieter = if verbose == 0 { quieter } else { &[] };
    let (filter, complaint) = filter(std::env::var("RUST_LOG"), level, quieter);
    tracing_subscriber::fmt()
        .with_writer(|| AboveProgress)
        .with_ansi(colour())
        .with_env_filter(filter)
        .init();
    if let Some(complaint) = complaint {
        eprintln!("pingpull: {complaint}");
    }
}

/// The progress line drawn on stderr now, if any: log lines print above it.
static PROGRESS: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Log lines go above `bar` until [`progress_gone`] (logs written straight to stderr
/// would land in the middle of the line, and it would be drawn again below each).
pub(crate) fn progress_shown(bar: &ProgressBar) {
    *PROGRESS.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
}

/// The progress line is no longer drawn: log lines go straight to stderr again.
pub(crate) fn progress_gone() {
    *PROGRESS.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Stderr, with the progress line (if one is drawn) cleared for each write and drawn
/// again after it. The formatter writes each event whole, so lines stay whole.
struct AboveProgress;

impl Write for AboveProgress {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = PROGRESS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `quietest` raised one step per `-v`, up to TRACE.
fn raised(quietest: LevelFilter, verbose: u8) -> LevelFilter {
    let start = LEVELS
        .iter()
        .position(|level| *level == quietest)
        .unwrap_or(0);
    let index = start.saturating_add(usize::from(verbose));
    LEVELS[index.min(LEVELS.len() - 1)]
}

/// The filter `RUST_LOG` asks for, or `default` (with `quieter` targets) when it is unset
/// or empty. An invalid `RUST_LOG` falls back to `default` with a complaint for the
/// operator: a typo must not silence the logs without a word.
fn filter(
    rust_log: Result<String, VarError>,
    default: LevelFilter,
    quieter: &[(&str, LevelFilter)],
) -> (EnvFilter, Option<String>) {
    let fallback = || {
        quieter.iter().fold(
            EnvFilter::default().add_directive(default.into()),
            |filter, (target, level)| match format!("{target}={level}").parse::<Directive>() {
                Ok(directive) => filter.add_directive(directive),
                // The targets are the binary's own constants: always valid.
                Err(_) => filter,
            },
        )
    };
    match rust_log {
        Ok(directives) if !directives.trim().is_empty() => {
            match EnvFilter::builder().parse(&directives) {
                Ok(filter) => (filter, None),
                Err(error) => (
                    fallback(),
                    Some(format!("RUST_LOG ignored ({error}); logging at {default}")),
                ),
            }
        }
        Ok(_) | Err(VarError::NotPresent) => (fallback(), None),
        Err(VarError::NotUnicode(_)) => (
            fallback(),
            Some(format!(
                "RUST_LOG ignored (not UTF-8); logging at {default}"
            )),
        ),
    }
}

/// Colour codes only for a person at a terminal, and never when `NO_COLOR` is set.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_v_raises_the_level_one_step_up_to_trace() {
        let steps: Vec<_> = (0..5).map(|v| raised(LevelFilter::WARN, v)).collect();
        assert_eq!(
            steps,
            [
                LevelFilter::WARN,
                LevelFilter::INFO,
                LevelFilter::DEBUG,
                LevelFilter::TRACE,
                LevelFilter::TRACE
            ]
        );
        assert_eq!(raised(LevelFilter::INFO, 1), LevelFilter::DEBUG);
        assert_eq!(raised(LevelFilter::INFO, u8::MAX), LevelFilter::TRACE);
    }

    #[test]
    fn rust_log_wins_over_the_default() {
        let (filter, complaint) = filter(Ok("pingpull=trace".into()), LevelFilter::WARN, &[]);
        assert_eq!(filter.max_level_hint(), Some(LevelFilter::TRACE));
        assert_eq!(complaint, None);
    }

    #[test]
    fn unset_or_empty_rust_log_gives_the_default() {
        for unset in [Err(VarError::NotPresent), Ok(String::new()), Ok(" ".into())] {
            let (filter, complaint) = filter(unset, LevelFilter::INFO, &[]);
            assert_eq!(filter.max_level_hint(), Some(LevelFilter::INFO));
            assert_eq!(complaint, None);
        }
    }

    #[test]
    fn invalid_rust_log_falls_back_with_a_complaint() {
        let (filter, complaint) = filter(Ok("pingpull=loud".into()), LevelFilter::WARN, &[]);
        assert_eq!(filter.max_level_hint(), Some(LevelFilter::WARN));
        let complaint = complaint.unwrap_or_default();
        assert!(complaint.starts_with("RUST_LOG ignored ("), "{complaint}");
        assert!(complaint.ends_with("logging at warn"), "{complaint}");
    }

    #[test]
    fn quieter_targets_apply_to_the_default_only() {
        let quieter = [("pingpull::ping", LevelFilter::ERROR)];
        let (default, _) = filter(Err(VarError::NotPresent), LevelFilter::WARN, &quieter);
        assert_eq!(default.to_string(), "pingpull::ping=error,warn");
        let (asked, _) = filter(Ok("debug".into()), LevelFilter::WARN, &quieter);
        assert_eq!(asked.to_string(), "debug");
    }
}
