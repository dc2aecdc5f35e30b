//! What a check found: each case's result, its severity, and the report as text or JSON.

use std::fmt;

use serde::Serialize;

/// How much a case matters (docs/protocol.md §6, "Our strictness and conformance").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Severity {
    /// What Livefyre itself required: a case not met fails the check.
    Conformance,
    /// pingpull's own stricter choice, beyond what Livefyre did: a case not met is a
    /// warning, and fails the check only in strict mode ([`CheckOptions::strict`]).
    ///
    /// [`CheckOptions::strict`]: super::CheckOptions::strict
    Advised,
}

/// What a case's result means for the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// The endpoint did what the case expects.
    Pass,
    /// An advised case not met, outside strict mode: reported, the check still passes.
    Warn,
    /// The case fails the check.
    Fail,
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CaseResult {
    /// The case: `no_token`, `valid_pull`, ...
    pub name: &'static str,
    /// What the case sends and expects.
    pub expectation: &'static str,
    /// Whether Livefyre required it or pingpull advises it.
    pub severity: Severity,
    /// For an advised case, why it is advised rather than required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<&'static str>,
    /// Whether the endpoint did what the case expects.
    pub passed: bool,
    /// What that means for the check: pass, warning or failure.
    pub outcome: Verdict,
    /// What the endpoint did (status, and what was wrong).
    pub detail: String,
    /// How long the answer took, in milliseconds.
    pub elapsed_ms: u64,
}

/// All cases, in the order they ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// The template checked.
    pub template: String,
    /// Whether advised cases not met fail the check ([`CheckOptions::strict`]).
    ///
    /// [`CheckOptions::strict`]: super::CheckOptions::strict
    pub strict: bool,
    /// The cases.
    pub cases: Vec<CaseResult>,
}

impl CheckReport {
    /// Whether no case failed the check: every conformance case passed, and, in strict
    /// mode, every advised case too.
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The cases that fail the check.
    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|c| c.outcome == Verdict::Fail)
    }

    /// The advised cases not met that only warn (none in strict mode).
    pub fn warnings(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|c| c.outcome == Verdict::Warn)
    }

    /// The report as JSON: `template`, `strict`, `passed` and the `cases`, each with its
    /// `severity` and `outcome` (`pass`, `warn` or `fail`).
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Json<'a> {
            template: &'a str,
            strict: bool,
            passed: bool,
            cases: &'a [CaseResult],
        }
        serde_json::to_string_pretty(&Json {
            template: &self.template,
            strict: self.strict,
            passed: self.passed(),
            cases: &self.cases,
        })
        .unwrap_or_default()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "checking {}", self.template)?;
        for case in &self.cases {
            let (label, kind) = match case.outcome {
                Verdict::Pass => {
                    writeln!(
                        f,
                        "PASS {:<15} {:>6} ms  {}",
                        case.name, case.elapsed_ms, case.detail
                    )?;
                    continue;
                }
                Verdict::Warn => ("WARN", "advised"),
                Verdict::Fail => ("FAIL", "expected"),
            };
            writeln!(
                f,
                "{label} {:<15} {:>6} ms  {} ({kind}: {})",
                case.name, case.elapsed_ms, case.detail, case.expectation
            )?;
            if let Some(advice) = case.advice {
                let why = if case.outcome == Verdict::Warn {
                    "advised, not required"
                } else {
                    "advised, required in strict mode"
                };
                writeln!(f, "     {why}: {advice}")?;
            }
        }
        self.summary(f)
    }
}

impl CheckReport {
    /// The last line: how many cases failed, and how many advised ones only warned.
    fn summary(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failures().count();
        let warned = self.warnings().count();
        let total = self.cases.len();
        match (failed, warned) {
            (0, 0) => writeln!(f, "all {total} cases passed"),
            (0, _) => writeln!(
                f,
                "{} of {total} cases passed, {}: advised, not required (strict mode fails on {})",
                total - warned,
                plural(warned, "warning"),
                if warned == 1 { "it" } else { "them" }
            ),
            (_, 0) => writeln!(f, "{failed} of {total} cases failed"),
            (_, _) => writeln!(
                f,
                "{failed} of {total} cases failed, and {}",
                plural(warned, "warning")
            ),
        }
    }
}

/// `1 warning`, `2 warnings`.
fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
