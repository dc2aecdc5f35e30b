//! `pingpull quickstart`, README's first command (`cargo run --features cli -- quickstart`),
//! run as a process: every step, as README.md shows them, and exit 0.

use crate::cli::commands::{bare, stderr, stdout};

/// Numbers (`5.1`, `127.0.0.1`, a port) as `#` and runs of spaces as one: a line from
/// README.md and one printed now differ only where times, ports and addresses do.
pub(crate) fn shape(line: &str) -> String {
    let mut shaped = String::new();
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let run = rest
            .find(|r: char| r != c && !(c.is_ascii_digit() && (r.is_ascii_digit() || r == '.')))
            .unwrap_or(rest.len());
        shaped.push(match c {
            '0'..='9' => '#',
            ' ' => ' ',
            _ => {
                shaped.push_str(&rest[..c.len_utf8()]);
                rest = &rest[c.len_utf8()..];
                continue;
            }
        });
        rest = &rest[run..];
    }
    shaped
}

/// The first line of the quickstart's output as README.md shows it.
pub(crate) fn readme_quickstart_first_line() -> &'static str {
    let readme = include_str!("../../../README.md");
    let block = readme
        .split("```text\n")
        .nth(1)
        .expect("README.md shows the quickstart's output in a text block");
    block.lines().next().unwrap()
}

#[test]
fn shape_keeps_the_words_and_hides_the_numbers() {
    assert_eq!(
        shape("[    5.1 ms] at http://127.0.0.1:36355"),
        "[ # ms] at http://#:#"
    );
    assert_eq!(
        shape("[   12.0 ms] at http://10.0.0.2:80"),
        "[ # ms] at http://#:#"
    );
}

#[test]
fn quickstart_runs_ping_for_pull_end_to_end_without_a_network_configured() {
    // No PINGPULL_NETWORK or PINGPULL_KEY: the quickstart brings its own.
    let output = bare().arg("quickstart").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        shape(lines[0]),
        shape(readme_quickstart_first_line()),
        "{text}"
    );
    let steps = [
        "emulator (Livefyre) listening at http://127.0.0.1:",
        "your app listening at http://127.0.0.1:",
        "pull URL registered with the emulator",
        "PUT /users/u1/display_name answered 204; the ping hook pinged Livefyre",
        "emulator's remote profile for u1 now says \"Ada King, Countess of Lovelace\" \
         (1 ping, signature verified: true)",
        "done: 1 ping(s) delivered",
    ];
    assert_eq!(lines.len(), steps.len(), "{text}");
    for (line, step) in lines.iter().zip(steps) {
        let (time, said) = line.split_once("] ").unwrap();
        assert!(time.starts_with('[') && time.ends_with(" ms"), "{line}");
        assert!(said.starts_with(step), "{line}");
    }
    // Nothing logged: the steps are the whole story.
    assert_eq!(stderr(&output), "");
}
