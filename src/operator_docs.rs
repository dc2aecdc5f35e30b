//! The Grafana dashboard and Prometheus alert rules in `docs/` name only what pingpull
//! records, and cover all of it. A test module of its own: it reads both the metrics'
//! contract and the Pull endpoint's rejections, and nothing depends on it.

use crate::metrics::DESCRIPTIONS;

const DOCS: [(&str, &str); 2] = [
    (
        "docs/grafana-dashboard.json",
        include_str!("../docs/grafana-dashboard.json"),
    ),
    (
        "docs/prometheus-alerts.yml",
        include_str!("../docs/prometheus-alerts.yml"),
    ),
];

/// Every `pingpull_...` name in `text`, as written (a histogram's series included).
fn names_in(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("pingpull_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        // `{__name__=~"pingpull_.+"}` is a pattern, not a name.
        if !tail[..end].ends_with('_') {
            names.push(&tail[..end]);
        }
        rest = &tail[end..];
    }
    names
}

/// The label values pingpull records: every `label!("key" => "value")` here, and the
/// Pull endpoint's rejections.
fn recorded_values(key: &str) -> Vec<&'static str> {
    let source = include_str!("metrics.rs");
    let pattern = format!("label!(\"{key}\" => \"");
    let mut values: Vec<&'static str> = source
        .match_indices(&pattern)
        .filter_map(|(at, _)| {
            let value = &source[at + pattern.len()..];
            value.split('"').next()
        })
        .collect();
    if key == "outcome" {
        values.extend(crate::pull::Rejection::NAMES);
    }
    values
}

#[test]
fn every_metric_they_name_is_recorded_and_every_one_is_watched() {
    let known: Vec<&str> = DESCRIPTIONS.iter().map(|(name, ..)| *name).collect();
    let mut watched = Vec::new();
    for (file, text) in DOCS {
        for name in names_in(text) {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| known.contains(base))
                .unwrap_or(name);
            assert!(
                known.contains(&base),
                "{file} names `{name}`, which pingpull does not record"
            );
            watched.push(base);
        }
    }
    for name in known {
        assert!(
            watched.contains(&name),
            "no panel or alert watches `{name}`"
        );
    }
}

#[test]
fn every_label_value_they_select_is_recorded() {
    for (file, text) in DOCS {
        for key in ["outcome", "result", "key"] {
            let recorded = recorded_values(key);
            assert!(!recorded.is_empty(), "{key}");
            // In the JSON the quotes are escaped: `outcome=\"ok\"`.
            for operator in ["=\"", "=~\"", "=\\\"", "=~\\\""] {
                let selector = format!("{key}{operator}");
                for (at, _) in text.match_indices(&selector) {
                    let value = text[at + selector.len()..].split('"').next().unwrap();
                    let value = value.trim_end_matches('\\');
                    for alternative in value.split('|') {
                        assert!(
                            recorded.contains(&alternative),
                            "{file} selects {key}=\"{alternative}\", which pingpull never records"
                        );
                    }
                }
            }
        }
    }
}
