//! Numeric flags that must be above zero (`--deadline`, `--timeout`, `--rate-limit`): clap
//! reports anything else as a usage error (exit 2) naming the flag and the unit. Such a
//! flag also takes `-1` as its value (`allow_negative_numbers`), so the answer is this
//! range error, not "unexpected argument '-1'".

use std::time::Duration;

/// A finite number of seconds above zero that a `Duration` holds.
pub(super) fn positive_seconds(text: &str) -> Result<f64, String> {
    positive(text)
        .filter(|seconds| Duration::try_from_secs_f64(*seconds).is_ok())
        .ok_or_else(|| "expected a positive number of seconds, such as 30 or 0.5".to_owned())
}

/// A finite rate above zero.
pub(super) fn positive_rate(text: &str) -> Result<f64, String> {
    positive(text)
        .ok_or_else(|| "expected a positive number per second, such as 50 or 0.5".to_owned())
}

fn positive(text: &str) -> Option<f64> {
    text.parse::<f64>()
        .ok()
        .filter(|number| number.is_finite() && *number > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_finite_numbers_above_zero_only() {
        assert_eq!(positive_seconds("0.5"), Ok(0.5));
        assert_eq!(positive_rate("30"), Ok(30.0));
        for bad in ["0", "-1", "-0.5", "nan", "inf", "-inf", "1e30", "many", ""] {
            let error = positive_seconds(bad).unwrap_err();
            assert!(
                error.contains("positive number of seconds"),
                "{bad}: {error}"
            );
            assert!(positive_rate(bad).is_err() || bad == "1e30", "{bad}");
        }
    }
}
