//! The human-readable rendering of an [`Explanation`]: indented, one line per test,
//! ✓ (held) or ✗ (failed).

use crate::input::LabelMap;

use super::{
    ClauseExplanation, ClusterExplanation, Explanation, ObjectExplanation, Overview, PolicyWecs,
    ReportedStateExplanation, SelectorExplanation,
};

/// `key=value`, with `""` for an empty value.
pub(super) fn label(key: &str, value: &str) -> String {
    if value.is_empty() {
        format!("{key}=\"\"")
    } else {
        format!("{key}={value}")
    }
}

/// `k=v, k2=v2`, or `none`.
fn labels_text(labels: &LabelMap) -> String {
    if labels.is_empty() {
        return "none".to_string();
    }
    labels
        .iter()
        .map(|(k, v)| label(k, v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Control characters, and the invisible ones that reorder or hide text.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// ✓ or ✗.
fn mark(held: bool) -> &'static str {
    if held { "✓" } else { "✗" }
}

impl Explanation {
    /// Human-readable rendering: indented, one line per test, ✓ (held) or ✗ (failed).
    pub fn to_text(&self) -> String {
        let mut out = Text::default();
        out.line(
            0,
            format!(
                "BindingPolicy {} (uid {}, generation {})",
                self.policy, self.uid, self.generation
            ),
        );
        if self.problems.is_empty() {
            out.line(0, "problems: none");
        } else {
            out.line(0, format!("problems: {}", self.problems.len()));
            for p in &self.problems {
                out.line(1, format!("- {p}"));
            }
        }
        if let Some(o) = &self.overview {
            o.render(&mut out);
        }
        if let Some(c) = &self.cluster {
            c.render(&mut out);
        }
        if let Some(o) = &self.object {
            o.render(&mut out);
        }
        out.0
    }
}

/// Lines of indented text.
#[derive(Default)]
struct Text(String);

impl Text {
    /// Appends one line; control characters (and bidirectional-text controls) in it,
    /// which names and label values from a log may hold, are escaped (`\n`,
    /// `\u{1b}`) so that no name can break the layout or drive the terminal.
    fn line(&mut self, depth: usize, text: impl AsRef<str>) {
        for _ in 0..depth {
            self.0.push_str("  ");
        }
        for c in text.as_ref().chars() {
            if needs_escape(c) {
                self.0.extend(c.escape_default());
            } else {
                self.0.push(c);
            }
        }
        self.0.push('\n');
    }
}

impl Overview {
    fn render(&self, out: &mut Text) {
        if self.cluster_selectors == 0 {
            out.line(
                0,
                "destinations: none: clusterSelectors is empty, so the policy selects no WEC",
            );
        } else {
            out.line(
                0,
                format!(
                    "destinations: {} of {} WECs",
                    self.destinations.len(),
                    self.wecs
                ),
            );
        }
        for d in &self.destinations {
            out.line(
                1,
                format!("{}: matched by {}", d.cluster, d.matched_by.join(", ")),
            );
        }
        out.line(
            0,
            format!(
                "workload: {} of {} objects selected",
                self.selected, self.objects
            ),
        );
        for c in &self.clauses {
            if c.readable {
                out.line(1, format!("{}: selects {}", c.path, c.selects));
            } else {
                out.line(1, format!("{}: cannot be read, selects nothing", c.path));
            }
        }
    }
}

impl SelectorExplanation {
    fn render(&self, out: &mut Text, depth: usize) {
        if let Some(problem) = &self.problem {
            out.line(depth, format!("✗ {}: {problem}", self.path));
            return;
        }
        if self.empty {
            out.line(
                depth,
                format!("✓ {}: {{}} (empty selector): matches everything", self.path),
            );
            return;
        }
        let verdict = if self.matches {
            "matches"
        } else {
            "does not match"
        };
        out.line(
            depth,
            format!("{} {} {verdict}", mark(self.matches), self.path),
        );
        for r in &self.requirements {
            out.line(
                depth + 1,
                format!("{} {}: {}", mark(r.held), r.test, r.reason),
            );
        }
    }
}

impl ClusterExplanation {
    fn render(&self, out: &mut Text) {
        let verdict = if self.destination {
            "a destination"
        } else {
            "not a destination"
        };
        out.line(0, format!("cluster {}: {verdict}", self.cluster));
        out.line(1, format!("labels: {}", labels_text(&self.labels)));
        if self.selectors.is_empty() {
            out.line(1, "✗ clusterSelectors is empty: the policy selects no WEC");
        }
        for s in &self.selectors {
            s.render(out, 1);
        }
    }
}

impl ObjectExplanation {
    fn render(&self, out: &mut Text) {
        let verdict = match &self.modulation {
            Some(m) => format!("selected (modulation: {})", m.summary()),
            None => "not selected".to_string(),
        };
        out.line(0, format!("object {}: {verdict}", self.object));
        out.line(
            1,
            format!(
                "version {}, resourceVersion {}",
                self.version, self.resource_version
            ),
        );
        out.line(1, format!("labels: {}", labels_text(&self.labels)));
        if self.clauses.is_empty() {
            out.line(1, "✗ downsync is empty: the policy selects no object");
        }
        for c in &self.clauses {
            c.render(out);
        }
        self.reported_state.render(out);
    }
}

impl ReportedStateExplanation {
    fn render(&self, out: &mut Text) {
        out.line(
            0,
            format!(
                "status return: {}; Bindery writes {}",
                self.decision, self.writes
            ),
        );
        let asking = |list: &[PolicyWecs]| -> String {
            if list.is_empty() {
                return "none".to_string();
            }
            list.iter()
                .map(|p| format!("{} (to {})", p.policy, p.wecs.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        };
        out.line(
            1,
            format!("singleton asked by: {}", asking(&self.singleton)),
        );
        out.line(
            1,
            format!("multi-WEC asked by: {}", asking(&self.multi_wec)),
        );
        let reports: Vec<String> = self
            .work_statuses
            .iter()
            .map(|w| {
                let status = if w.has_status {
                    "a status"
                } else {
                    "no status"
                };
                format!("{}/{} ({status})", w.wec, w.name)
            })
            .collect();
        let reports = if reports.is_empty() {
            "none".to_string()
        } else {
            reports.join(", ")
        };
        out.line(1, format!("WorkStatuses: {reports}"));
        if self.labelled {
            out.line(1, "carries a status-return label");
        }
    }
}

impl ClauseExplanation {
    fn render(&self, out: &mut Text) {
        let verdict = if self.passed {
            format!("selects it (modulation: {})", self.modulation.summary())
        } else {
            "does not select it".to_string()
        };
        out.line(1, format!("{} {} {verdict}", mark(self.passed), self.path));
        for p in &self.problems {
            out.line(2, format!("! {p}"));
        }
        for t in &self.tests {
            out.line(2, format!("{} {}: {}", mark(t.held), t.test, t.reason));
            if let Some(labels) = &t.namespace_labels {
                out.line(3, format!("Namespace labels: {}", labels_text(labels)));
            }
            for s in &t.selectors {
                s.render(out, 3);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let mut t = Text::default();
        t.line(1, "cluster a\nb\u{1b}[31m\u{202e}x ✓");
        assert_eq!(t.0, "  cluster a\\nb\\u{1b}[31m\\u{202e}x ✓\n");
    }
}
