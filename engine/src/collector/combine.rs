//! A collector's rows combined into its result, as KubeStellar combines them
//! (`pkg/status/combinedstatus-resolution.go:645-1075`): the selected rows, or the
//! aggregations over the groups; in a deterministic order where KubeStellar's follows
//! Go's map iteration (select rows and errors by WEC name, groups by their values).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::spec::{Aggregator, CollectorSpec, RowEvaluation, Subject};
use super::value::Cell;

/// One collector's result in a CombinedStatus (`NamedStatusCombination`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Combination {
    /// The collector's name.
    pub name: String,
    /// The columns: the select names, or the groupBy then combinedFields names.
    pub column_names: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<Cell>>,
    /// `(wec, column, error)`: in an aggregation, one per column that had an evaluation
    /// error, from the first WEC (by name) that had it.
    pub row_errors: Vec<(String, String, String)>,
    /// `(column, error)` of the aggregations.
    pub aggregation_errors: Vec<(String, String)>,
}

impl Combination {
    /// In KubeStellar's JSON layout (`NamedStatusCombination`).
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "name": self.name,
            "columnNames": self.column_names,
        });
        if !self.rows.is_empty() {
            out["rows"] = self
                .rows
                .iter()
                .map(|row| json!({"columns": row.iter().map(Cell::to_json).collect::<Vec<_>>()}))
                .collect();
        }
        if !self.row_errors.is_empty() {
            out["rowErrors"] = self
                .row_errors
                .iter()
                .map(|(wec, column, error)| {
                    json!({"wec": {"clusterId": wec}, "columnName": column, "error": error})
                })
                .collect();
        }
        if !self.aggregation_errors.is_empty() {
            out["aggregationErrors"] = self
                .aggregation_errors
                .iter()
                .map(|(column, error)| json!({"columnName": column, "error": error}))
                .collect();
        }
        out
    }
}

/// Combines `rows` (`(wec, evaluation)`, one per WEC of the policy's destinations, any
/// order) of collector `name` with `spec`.
pub fn combine(name: &str, spec: &CollectorSpec, rows: &[(String, RowEvaluation)]) -> Combination {
    let mut kept: Vec<(&str, &RowEvaluation)> = rows
        .iter()
        .filter(|(_, r)| matches!(r, RowEvaluation::Kept { .. }))
        .map(|(w, r)| (w.as_str(), r))
        .collect();
    kept.sort_by(|a, b| a.0.cmp(b.0));
    if spec.aggregates() {
        aggregate(name, spec, &kept)
    } else {
        select(name, spec, &kept)
    }
}

/// The select table: a row per WEC kept, its cells (evaluation errors are in them, not in
/// `rowErrors`, as KubeStellar does).
fn select(name: &str, spec: &CollectorSpec, kept: &[(&str, &RowEvaluation)]) -> Combination {
    let rows = kept
        .iter()
        .filter_map(|(_, r)| match r {
            RowEvaluation::Kept { select, .. } => Some(select.clone()),
            RowEvaluation::Dropped => None,
        })
        .collect();
    Combination {
        name: name.to_string(),
        column_names: spec.select.iter().map(|(n, _)| n.clone()).collect(),
        rows,
        row_errors: Vec::new(),
        aggregation_errors: Vec::new(),
    }
}

/// The aggregation table: rows with evaluation errors left out (their first error per
/// column reported), the others grouped by their groupBy cells; one row per group.
fn aggregate(name: &str, spec: &CollectorSpec, kept: &[(&str, &RowEvaluation)]) -> Combination {
    let mut row_errors: Vec<(String, String, String)> = Vec::new();
    let mut groups: BTreeMap<&[Cell], Vec<(&str, &[Subject])>> = BTreeMap::new();
    if spec.group_by.is_empty() {
        // Without groupBy, one group, present even with no row.
        groups.insert(&[], Vec::new());
    }
    for (wec, r) in kept {
        let RowEvaluation::Kept {
            group,
            subjects,
            errors,
            ..
        } = r
        else {
            continue;
        };
        if !errors.is_empty() {
            for (column, error) in errors {
                if !row_errors.iter().any(|(_, c, _)| c == column) {
                    row_errors.push((wec.to_string(), column.clone(), error.clone()));
                }
            }
            continue;
        }
        groups
            .entry(group.as_slice())
            .or_default()
            .push((wec, subjects));
    }
    let mut rows = Vec::with_capacity(groups.len());
    let mut aggregation_errors = Vec::new();
    for (group, members) in groups {
        let mut row: Vec<Cell> = group.to_vec();
        for (i, field) in spec.combined_fields.iter().enumerate() {
            let (cell, error) = aggregate_field(&field.aggregator, i, &members);
            row.push(cell);
            if let Some(error) = error {
                aggregation_errors.push((field.name.clone(), error));
            }
        }
        rows.push(row);
    }
    let column_names = spec
        .group_by
        .iter()
        .map(|(n, _)| n.clone())
        .chain(spec.combined_fields.iter().map(|f| f.name.clone()))
        .collect();
    Combination {
        name: name.to_string(),
        column_names,
        rows,
        row_errors,
        aggregation_errors,
    }
}

/// The cell of combinedField `i` over a group's `members`, and its error (the first).
fn aggregate_field(
    aggregator: &Aggregator,
    i: usize,
    members: &[(&str, &[Subject])],
) -> (Cell, Option<String>) {
    let mut error: Option<String> = None;
    let mut numbers = members
        .iter()
        .filter_map(|(wec, subjects)| match &subjects[i] {
            Subject::NotNumber(e) => {
                error.get_or_insert_with(|| format!("for WEC {wec}, {e}"));
                None
            }
            subject => subject.number(),
        });
    let cell = match aggregator {
        Aggregator::Count => return (Cell::int(members.len() as i64), None),
        // From +0 as Go does (Rust's `sum` of no float is -0).
        Aggregator::Sum => Cell::float(numbers.by_ref().fold(0.0, |a, b| a + b)),
        Aggregator::Avg => {
            let sum: f64 = numbers.by_ref().fold(0.0, |a, b| a + b);
            if members.is_empty() {
                error = Some("no values to average".to_string());
                Cell::float(f64::NAN)
            } else {
                Cell::float(sum / members.len() as f64)
            }
        }
        Aggregator::Min => Cell::float(numbers.by_ref().fold(f64::INFINITY, f64::min)),
        Aggregator::Max => Cell::float(numbers.by_ref().fold(f64::NEG_INFINITY, f64::max)),
        Aggregator::Unknown(t) => {
            return (
                Cell::Null,
                Some(format!("unsupported aggregation type {t}")),
            );
        }
    };
    (cell, error)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::cel::Row;
    use super::*;

    fn spec(v: Value) -> CollectorSpec {
        CollectorSpec::compile(Some(&v)).unwrap()
    }

    fn rows(spec: &CollectorSpec, statuses: &[(&str, Value)]) -> Vec<(String, RowEvaluation)> {
        statuses
            .iter()
            .map(|(wec, status)| {
                let row = Row::new(wec, None, Some(status), None);
                (wec.to_string(), spec.evaluate(&row))
            })
            .collect()
    }

    /// KubeStellar's e2e C5: aggregations over zero WECs.
    #[test]
    fn aggregations_over_no_wec() {
        let s = spec(json!({
            "filter": "false",
            "combinedFields": [
                {"name": "count", "type": "COUNT"},
                {"name": "max", "type": "MAX", "subject": "2"},
                {"name": "min", "type": "MIN", "subject": "2"},
                {"name": "sum", "type": "SUM", "subject": "2"},
                {"name": "avg", "type": "AVG", "subject": "2"}
            ],
            "limit": 20
        }));
        let r = rows(&s, &[("c1", json!({})), ("c2", json!({}))]);
        let c = combine("zero", &s, &r);
        assert_eq!(c.column_names, ["count", "max", "min", "sum", "avg"]);
        let texts: Vec<String> = c.rows[0]
            .iter()
            .map(|cell| {
                cell.number().map_or(String::new(), |_| match cell {
                    Cell::Number(t) => t.clone(),
                    _ => unreachable!(),
                })
            })
            .collect();
        assert_eq!(texts, ["0", "-Inf", "+Inf", "0", "NaN"]);
        assert_eq!(
            c.aggregation_errors,
            [("avg".to_string(), "no values to average".to_string())]
        );
    }

    /// KubeStellar's e2e C1 and C2: the full status of each WEC; the sum of their
    /// available replicas.
    #[test]
    fn select_and_sum_as_the_e2e_tests_check_them() {
        let full = spec(json!({
            "select": [{"name": "wecName", "def": "inventory.name"}, {"name": "status", "def": "returned.status"}],
            "limit": 20
        }));
        let statuses = [
            ("cluster2", json!({"availableReplicas": 1})),
            ("cluster1", json!({"availableReplicas": 1})),
        ];
        let c = combine("full-status", &full, &rows(&full, &statuses));
        assert_eq!(c.rows.len(), 2);
        assert_eq!(
            c.rows[0][0],
            Cell::String("cluster1".into()),
            "rows in WEC name order"
        );
        assert_eq!(c.rows[1][1], Cell::object(&json!({"availableReplicas": 1})));
        let sum = spec(json!({
            "combinedFields": [{"name": "sum", "type": "SUM", "subject": "returned.status.availableReplicas"}],
            "limit": 20
        }));
        let c = combine("sum", &sum, &rows(&sum, &statuses));
        assert_eq!(
            c.to_json()["rows"],
            json!([{"columns": [{"type": "Number", "float": "2"}]}])
        );
    }

    #[test]
    fn groups_errors_and_list_valued_keys() {
        let s = spec(json!({
            "groupBy": [{"name": "conditions", "def": "returned.status.conditions"}],
            "combinedFields": [
                {"name": "n", "type": "COUNT"},
                {"name": "avg", "type": "AVG", "subject": "returned.status.ready"}
            ],
            "limit": 20
        }));
        let statuses = [
            ("c3", json!({"conditions": ["a"], "ready": "x"})),
            ("c1", json!({"conditions": ["a"], "ready": 2})),
            ("c2", json!({"conditions": ["b"], "ready": 1})),
            ("c4", json!({"ready": 1})),
        ];
        let c = combine("g", &s, &rows(&s, &statuses));
        // A list-valued key groups (KubeStellar panics on it).
        assert_eq!(c.column_names, ["conditions", "n", "avg"]);
        assert_eq!(c.rows.len(), 2, "{c:#?}");
        assert_eq!(c.rows[0][0], Cell::object(&json!(["a"])));
        assert_eq!(c.rows[0][1], Cell::int(2));
        // AVG divides by the rows, the unparsable subject skipped and reported.
        assert_eq!(c.rows[0][2], Cell::float(1.0));
        assert_eq!(
            c.aggregation_errors,
            [("avg".to_string(), "for WEC c3, failed to parse combinedField subject as a float: parsing \"x\": invalid syntax".to_string())]
        );
        // c4 had an evaluation error: left out, reported once for its column.
        assert_eq!(c.row_errors.len(), 1);
        assert_eq!(
            (c.row_errors[0].0.as_str(), c.row_errors[0].1.as_str()),
            ("c4", "conditions")
        );
    }
}
