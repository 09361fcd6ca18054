//! A StatusCollector's spec, checked and compiled as KubeStellar's status controller
//! checks it (`pkg/status/statuscollector.go:78-139`, with its error texts), and its
//! evaluation on one row of its table (one WEC of a workload object,
//! `pkg/status/combinedstatus-resolution.go:477-594`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cel::{Expression, Row, Uses, to_cell, type_name};
use super::value::Cell;

/// An aggregation of `combinedFields`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Aggregator {
    /// The rows of the group.
    Count,
    /// The sum of the subjects.
    Sum,
    /// The sum of the subjects over the rows of the group.
    Avg,
    /// The least subject.
    Min,
    /// The greatest subject.
    Max,
    /// Another type (not refused when the collector is checked: its cell is `Null`, with
    /// an aggregation error).
    Unknown(String),
}

impl Aggregator {
    fn parse(s: &str) -> Aggregator {
        match s {
            "COUNT" => Aggregator::Count,
            "SUM" => Aggregator::Sum,
            "AVG" => Aggregator::Avg,
            "MIN" => Aggregator::Min,
            "MAX" => Aggregator::Max,
            other => Aggregator::Unknown(other.to_string()),
        }
    }
}

/// One of `combinedFields`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CombinedField {
    /// The column's name.
    pub name: String,
    /// The aggregation.
    pub aggregator: Aggregator,
    /// The expression aggregated (`None` for `COUNT`).
    pub subject: Option<Expression>,
}

/// A StatusCollector's spec, valid and compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorSpec {
    /// `filter`.
    pub filter: Option<Expression>,
    /// `groupBy`, named.
    pub group_by: Vec<(String, Expression)>,
    /// `combinedFields`.
    pub combined_fields: Vec<CombinedField>,
    /// `select`, named.
    pub select: Vec<(String, Expression)>,
    /// `limit` (read, not applied, as in KubeStellar).
    pub limit: i64,
}

/// The spec as written (`spec` of a StatusCollector).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpec {
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    group_by: Vec<RawNamed>,
    #[serde(default)]
    combined_fields: Vec<RawAggregator>,
    #[serde(default)]
    select: Vec<RawNamed>,
    #[serde(default)]
    limit: i64,
}

#[derive(Debug, Deserialize)]
struct RawNamed {
    name: String,
    def: String,
}

#[derive(Debug, Deserialize)]
struct RawAggregator {
    name: String,
    #[serde(rename = "type")]
    type_: String,
    #[serde(default)]
    subject: Option<String>,
}

impl CollectorSpec {
    /// Checks and compiles `spec` (a StatusCollector's `spec`); the errors are
    /// KubeStellar's texts, in its order: the structure first (which stops the rest),
    /// then each expression.
    pub fn compile(spec: Option<&Value>) -> Result<CollectorSpec, Vec<String>> {
        let raw: RawSpec = match spec {
            None | Some(Value::Null) => RawSpec::default(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| vec![format!("spec cannot be read: {e}")])?,
        };
        let mut errors = Vec::new();
        if !raw.select.is_empty() && (!raw.group_by.is_empty() || !raw.combined_fields.is_empty()) {
            errors.push("groupBy and combinedFields must be empty if select is not".to_string());
        }
        if raw.combined_fields.is_empty() && !raw.group_by.is_empty() {
            errors.push("groupBy must be empty if combinedFields is".to_string());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let compile = |errors: &mut Vec<String>, what: String, source: &str| {
            Expression::compile(source)
                .map_err(|e| errors.push(format!("{what} invalid: {e}")))
                .ok()
        };
        let filter = raw
            .filter
            .as_deref()
            .and_then(|f| compile(&mut errors, "filter expression".into(), f));
        let select: Vec<_> = raw
            .select
            .iter()
            .map(|s| {
                let what = format!("select expression ({})", s.name);
                (s.name.clone(), compile(&mut errors, what, &s.def))
            })
            .collect();
        let group_by: Vec<_> = raw
            .group_by
            .iter()
            .map(|g| {
                let what = format!("groupBy expression ({})", g.name);
                (g.name.clone(), compile(&mut errors, what, &g.def))
            })
            .collect();
        let mut combined_fields = Vec::new();
        for field in &raw.combined_fields {
            let aggregator = Aggregator::parse(&field.type_);
            let subject = match (&aggregator, &field.subject) {
                (Aggregator::Count, Some(_)) => {
                    errors.push(format!(
                        "combinedField expression ({}) invalid: subject must be nil for {} type",
                        field.name, field.type_
                    ));
                    None
                }
                (Aggregator::Count, None) => None,
                (_, None) => {
                    errors.push(format!(
                        "combinedField expression ({}) invalid: subject must be set",
                        field.name
                    ));
                    None
                }
                (_, Some(source)) => compile(
                    &mut errors,
                    format!("combinedField expression ({}) subject", field.name),
                    source,
                ),
            };
            combined_fields.push(CombinedField {
                name: field.name.clone(),
                aggregator,
                subject,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let named = |v: Vec<(String, Option<Expression>)>| {
            v.into_iter()
                .map(|(n, e)| (n, e.expect("no error: compiled")))
                .collect()
        };
        Ok(CollectorSpec {
            filter,
            group_by: named(group_by),
            combined_fields,
            select: named(select),
            limit: raw.limit,
        })
    }

    /// Which variables its expressions read (`obj` makes the workload object's content
    /// needed).
    pub fn uses(&self) -> Uses {
        self.filter
            .iter()
            .chain(self.group_by.iter().map(|(_, e)| e))
            .chain(self.select.iter().map(|(_, e)| e))
            .chain(
                self.combined_fields
                    .iter()
                    .filter_map(|f| f.subject.as_ref()),
            )
            .fold(Uses::default(), |uses, e| uses.or(e.uses()))
    }

    /// True when it aggregates (`combinedFields`), false when it selects.
    pub fn aggregates(&self) -> bool {
        !self.combined_fields.is_empty()
    }

    /// Evaluates the spec on one row: the filter, then every select, groupBy and subject
    /// expression, as KubeStellar does.
    pub fn evaluate(&self, row: &Row) -> RowEvaluation {
        let mut errors = Vec::new();
        if let Some(filter) = &self.filter {
            match filter.evaluate(row) {
                Err(e) => errors.push((String::new(), e)),
                Ok(cel::Value::Bool(false)) => return RowEvaluation::Dropped,
                Ok(cel::Value::Bool(true) | cel::Value::Null) => {}
                Ok(other) => errors.push((
                    String::new(),
                    format!(
                        "filter expression has type {} but expected bool or null",
                        type_name(&other)
                    ),
                )),
            }
        }
        let mut cell = |name: &str, e: &Expression| match e.evaluate(row) {
            Ok(v) => to_cell(&v),
            Err(error) => {
                errors.push((name.to_string(), error.clone()));
                Cell::String(error)
            }
        };
        let select = self.select.iter().map(|(n, e)| cell(n, e)).collect();
        let group = self.group_by.iter().map(|(n, e)| cell(n, e)).collect();
        let mut subjects = Vec::with_capacity(self.combined_fields.len());
        for field in &self.combined_fields {
            let subject = match &field.subject {
                None => Subject::Missing,
                Some(e) => match e.evaluate(row) {
                    Ok(v) => Subject::of(&v),
                    Err(error) => {
                        errors.push((field.name.clone(), error.clone()));
                        Subject::Error(error)
                    }
                },
            };
            subjects.push(subject);
        }
        RowEvaluation::Kept {
            select,
            group,
            subjects,
            errors,
        }
    }
}

/// What aggregation takes from one row's subject.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Subject {
    /// No subject (`COUNT`), or `null`: skipped.
    Missing,
    /// A number (the bits of a 64-bit float).
    Number(u64),
    /// Not a number: the aggregation error it causes.
    NotNumber(String),
    /// The subject's evaluation failed (the row is left out of aggregations).
    Error(String),
}

impl Subject {
    /// A subject's value as aggregation takes it: numbers as floats, strings parsed as
    /// numbers, `null` skipped, anything else an error naming its type.
    fn of(value: &cel::Value) -> Subject {
        let number = |x: f64| Subject::Number(x.to_bits());
        match value {
            cel::Value::Int(i) => number(*i as f64),
            cel::Value::UInt(u) => number(*u as f64),
            cel::Value::Float(x) => number(*x),
            cel::Value::Null => Subject::Missing,
            cel::Value::String(s) => match s.trim().parse::<f64>() {
                Ok(x) if !s.trim().is_empty() => number(x),
                _ => Subject::NotNumber(format!(
                    "failed to parse combinedField subject as a float: parsing {:?}: invalid syntax",
                    s.as_str()
                )),
            },
            other => Subject::NotNumber(format!(
                "combinedField subject has unexpected type {}",
                type_name(other)
            )),
        }
    }

    /// The number, if it is one.
    pub fn number(&self) -> Option<f64> {
        match self {
            Subject::Number(bits) => Some(f64::from_bits(*bits)),
            _ => None,
        }
    }
}

/// A collector's evaluation on one row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RowEvaluation {
    /// The filter said `false`: the row is not in the table.
    Dropped,
    /// The row is in the table.
    Kept {
        /// The select cells (an evaluation error is a `String` cell holding it).
        select: Vec<Cell>,
        /// The groupBy cells (likewise).
        group: Vec<Cell>,
        /// One per combinedField.
        subjects: Vec<Subject>,
        /// `(column, error)` of every evaluation that failed (the filter's column is
        /// `""`), in the order evaluated.
        errors: Vec<(String, String)>,
    },
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(spec: Value) -> Vec<String> {
        CollectorSpec::compile(Some(&spec)).unwrap_err()
    }

    #[test]
    fn specs_are_checked_with_kubestellars_texts() {
        assert_eq!(
            errors(json!({"select": [{"name": "a", "def": "1"}],
                          "combinedFields": [{"name": "c", "type": "COUNT"}], "limit": 20})),
            ["groupBy and combinedFields must be empty if select is not"]
        );
        assert_eq!(
            errors(json!({"groupBy": [{"name": "g", "def": "1"}], "limit": 20})),
            ["groupBy must be empty if combinedFields is"]
        );
        let errs = errors(json!({
            "filter": "foo == 1",
            "groupBy": [{"name": "g", "def": "returned.status.phase +"}],
            "combinedFields": [
                {"name": "n", "type": "COUNT", "subject": "1"},
                {"name": "s", "type": "SUM"},
                {"name": "m", "type": "MAX", "subject": "bar"}
            ],
            "limit": 20
        }));
        assert_eq!(errs.len(), 5, "{errs:#?}");
        assert!(errs[0].starts_with("filter expression invalid: failed to check expression: undeclared reference to 'foo'"), "{}", errs[0]);
        assert!(
            errs[1].starts_with("groupBy expression (g) invalid: failed to parse expression: "),
            "{}",
            errs[1]
        );
        assert_eq!(
            errs[2],
            "combinedField expression (n) invalid: subject must be nil for COUNT type"
        );
        assert_eq!(
            errs[3],
            "combinedField expression (s) invalid: subject must be set"
        );
        assert!(errs[4].starts_with("combinedField expression (m) subject invalid: failed to check expression: undeclared reference to 'bar'"), "{}", errs[4]);
        let good = CollectorSpec::compile(Some(&json!({
            "filter": "obj.spec.replicas == returned.status.availableReplicas",
            "select": [{"name": "wec", "def": "inventory.name"}],
            "limit": 20
        })))
        .unwrap();
        assert!(good.uses().obj && good.uses().inventory && !good.aggregates());
    }

    #[test]
    fn rows_are_evaluated_as_kubestellar_evaluates_them() {
        let spec = CollectorSpec::compile(Some(&json!({
            "filter": "returned.status.phase != 'Gone'",
            "groupBy": [{"name": "phase", "def": "returned.status.phase"}],
            "combinedFields": [
                {"name": "n", "type": "COUNT"},
                {"name": "sum", "type": "SUM", "subject": "returned.status.replicas"}
            ],
            "limit": 20
        })))
        .unwrap();
        let row = |status: Value| Row::new("c1", None, Some(&status), None);
        assert_eq!(
            spec.evaluate(&row(json!({"phase": "Gone"}))),
            RowEvaluation::Dropped
        );
        let RowEvaluation::Kept {
            group,
            subjects,
            errors,
            ..
        } = spec.evaluate(&row(json!({"phase": "Running", "replicas": "3"})))
        else {
            panic!("kept")
        };
        assert_eq!(group, [Cell::String("Running".into())]);
        assert_eq!(
            subjects,
            [Subject::Missing, Subject::Number(3f64.to_bits())]
        );
        assert!(errors.is_empty());
        // A filter that is not a boolean keeps the row and is an error of column "".
        let odd = CollectorSpec::compile(Some(&json!({
            "filter": "returned.status.phase",
            "select": [{"name": "x", "def": "returned.status.nothing"}],
            "limit": 20
        })))
        .unwrap();
        let RowEvaluation::Kept { select, errors, .. } =
            odd.evaluate(&row(json!({"phase": "Running"})))
        else {
            panic!("kept")
        };
        assert_eq!(errors[0].0, "");
        assert_eq!(
            errors[0].1,
            "filter expression has type string but expected bool or null"
        );
        assert_eq!(errors[1].0, "x");
        assert!(
            matches!(&select[0], Cell::String(e) if e.starts_with("failed to evaluate expression: "))
        );
        assert_eq!(
            Subject::of(&cel::Value::String(std::sync::Arc::new("abc".into()))),
            Subject::NotNumber(
                "failed to parse combinedField subject as a float: parsing \"abc\": invalid syntax"
                    .into()
            )
        );
    }
}
