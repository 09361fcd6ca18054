//! The CEL adapter. KubeStellar's collectors are CEL (cel-go v0.22: the standard library
//! and macros, four variables, `pkg/status/cel-evaluator.go:28-63`); here the `cel`
//! crate evaluates them, behind what it lacks or does otherwise:
//!
//! - **limits** on a hostile expression, checked before the parser sees it (its
//!   recursion would otherwise follow the nesting) and on the parsed form: at most
//!   [`MAX_EXPRESSION_BYTES`] long, [`MAX_NESTING`] levels of brackets, and
//!   [`MAX_COMPREHENSION_NESTING`] macros (`all`, `exists`, `map`, `filter`, ...) inside
//!   one another, so an evaluation's work stays within a small power of its input's size;
//!   an error message is cut at [`MAX_ERROR_BYTES`];
//! - **the identifier check** cel-go's type check makes on KubeStellar's four `dyn`
//!   variables: every name an expression reads is one of [`VARIABLES`] or a
//!   comprehension's own (what an expression reads comes from its parsed form, never a
//!   text scan);
//! - **JSON to CEL** as Go's unstructured decoding gives it: integers that fit 64 bits
//!   are `int`, other numbers `double` (the crate's serde path would make them `uint`);
//! - **CEL to a cell** ([`Cell`]) with KubeStellar's value encoding.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::{Context, Program, Value as CelValue};
use serde_json::Value;

use super::value::Cell;

/// The variables a collector's expressions may read.
pub const VARIABLES: [&str; 4] = ["inventory", "obj", "returned", "propagation"];

/// The longest expression compiled.
pub const MAX_EXPRESSION_BYTES: usize = 8 * 1024;

/// The deepest nesting of `(`, `[` and `{` in an expression.
pub const MAX_NESTING: usize = 32;

/// The most comprehensions (macros) nested inside one another.
pub const MAX_COMPREHENSION_NESTING: usize = 2;

/// The longest error message kept (a CEL error may print the values it met).
pub const MAX_ERROR_BYTES: usize = 512;

/// The most work an evaluation with macros may take, in a bound of its steps: the values
/// of its row to the power of its macro nesting, times its length. Above it, the
/// evaluation is refused for that row (an error, as an evaluation error is).
pub const MAX_COST: u128 = 100_000_000;

/// Which of the [`VARIABLES`] an expression reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Uses {
    /// `inventory`.
    pub inventory: bool,
    /// `obj` (the workload object's content: fetched only for such expressions).
    pub obj: bool,
    /// `returned`.
    pub returned: bool,
    /// `propagation`.
    pub propagation: bool,
}

impl Uses {
    /// The variables of `self` or `other`.
    pub fn or(self, other: Uses) -> Uses {
        Uses {
            inventory: self.inventory || other.inventory,
            obj: self.obj || other.obj,
            returned: self.returned || other.returned,
            propagation: self.propagation || other.propagation,
        }
    }
}

/// A compiled CEL expression of a collector.
#[derive(Clone)]
pub struct Expression {
    source: String,
    program: Arc<Program>,
    uses: Uses,
    /// Macros nested inside one another (0 to [`MAX_COMPREHENSION_NESTING`]).
    comprehension_depth: usize,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expression")
            .field("source", &self.source)
            .field("uses", &self.uses)
            .finish()
    }
}

impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Expression {}

impl Expression {
    /// Compiles `source`: the limits, the parse, the identifier check. The error is the
    /// text KubeStellar puts after `filter expression invalid: ` and the like:
    /// `failed to parse expression: ...` or `failed to check expression: ...`.
    pub fn compile(source: &str) -> Result<Expression, String> {
        let parse_error = |m: String| format!("failed to parse expression: {m}");
        let check_error = |m: String| format!("failed to check expression: {m}");
        if source.len() > MAX_EXPRESSION_BYTES {
            return Err(parse_error(format!(
                "longer than {MAX_EXPRESSION_BYTES} bytes ({} bytes)",
                source.len()
            )));
        }
        if nesting(source) > MAX_NESTING {
            return Err(parse_error(format!(
                "nested deeper than {MAX_NESTING} levels"
            )));
        }
        let program = Program::compile(source).map_err(|e| parse_error(cut(&e.to_string())))?;
        let mut walk = Walk::default();
        walk.expr(program.expression(), &mut Vec::new(), 0);
        if walk.comprehension_depth > MAX_COMPREHENSION_NESTING {
            return Err(check_error(format!(
                "more than {MAX_COMPREHENSION_NESTING} macros (all, exists, map, filter, ...) nested inside one another"
            )));
        }
        if !walk.undeclared.is_empty() {
            walk.undeclared.sort();
            walk.undeclared.dedup();
            return Err(check_error(format!(
                "undeclared reference to {} (the variables are inventory, obj, returned and propagation)",
                walk.undeclared
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Expression {
            source: source.to_string(),
            program: Arc::new(program),
            uses: walk.uses,
            comprehension_depth: walk.comprehension_depth,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables it reads.
    pub fn uses(&self) -> Uses {
        self.uses
    }

    /// Evaluates the expression on one row; an error as KubeStellar reports it,
    /// `failed to evaluate expression: ...` (the rest cel-go's text where the `cel`
    /// crate's error has a cel-go counterpart, `go_message`; else the crate's text, cut
    /// at [`MAX_ERROR_BYTES`]).
    pub fn evaluate(&self, row: &Row) -> Result<CelValue, String> {
        if self.comprehension_depth > 0 {
            let cost = (row.values as u128)
                .saturating_pow(self.comprehension_depth as u32)
                .saturating_mul(self.source.len() as u128);
            if cost > MAX_COST {
                return Err(format!(
                    "failed to evaluate expression: too costly for this row: {} macros nested over {} values (a bound of {cost} steps, more than {MAX_COST})",
                    self.comprehension_depth, row.values
                ));
            }
        }
        self.program
            .execute(&row.context)
            .map_err(|e| format!("failed to evaluate expression: {}", cut(&go_message(&e))))
    }
}

/// The text cel-go v0.22 (KubeStellar's) gives the runtime errors both libraries have
/// (`common/types/err.go`, `map.go`): a missing key, a division or modulus by zero, an
/// integer overflow, no overload for the operand types; the `cel` crate's own text for
/// the others.
fn go_message(error: &cel::ExecutionError) -> String {
    use cel::ExecutionError as E;
    match error {
        E::NoSuchKey(key) => format!("no such key: {key}"),
        E::DivisionByZero(_) => "division by zero".into(),
        E::RemainderByZero(_) => "modulus by zero".into(),
        E::Overflow(..) => "integer overflow".into(),
        E::NoSuchOverload(_) | E::UnsupportedBinaryOperator(..) | E::ValuesNotComparable(..) => {
            "no such overload".into()
        }
        other => other.to_string(),
    }
}

/// CEL's standard environment, built once: building it registers every function and
/// macro, the larger part of evaluating a row when done per row.
fn stdlib() -> Arc<cel::Env> {
    static STDLIB: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));
    STDLIB.clone()
}

/// The variables of one row of a collector's table (one WEC of a workload object),
/// converted once and shared by every expression evaluated on it.
pub struct Row {
    context: Context<'static, 'static>,
    /// The JSON values (nodes) of `obj` and `returned.status`: what a macro can range
    /// over.
    values: usize,
}

impl Row {
    /// The row of WEC `wec`: `obj` the workload object (`None` when no expression reads
    /// it), `returned.status` the WorkStatus's status (`None`: no WorkStatus, or none
    /// reported: an empty map, as KubeStellar gives it), `propagation
    /// .lastReturnedUpdateTimestamp` an RFC 3339 time (`None`: the zero time).
    pub fn new(
        wec: &str,
        obj: Option<&Value>,
        returned_status: Option<&Value>,
        last_returned_update: Option<&str>,
    ) -> Row {
        let mut context = Context::with_env(stdlib());
        let map = |entries: Vec<(&str, CelValue)>| -> CelValue {
            let map: HashMap<String, CelValue> = entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            CelValue::from(map)
        };
        context.add_variable_from_value("inventory", map(vec![("name", CelValue::from(wec))]));
        context.add_variable_from_value("obj", obj.map_or_else(|| map(Vec::new()), to_cel));
        let status = returned_status
            .filter(|s| !s.is_null())
            .map_or_else(|| map(Vec::new()), to_cel);
        context.add_variable_from_value("returned", map(vec![("status", status)]));
        let timestamp = last_returned_update
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .unwrap_or_else(zero_time);
        context.add_variable_from_value(
            "propagation",
            map(vec![(
                "lastReturnedUpdateTimestamp",
                CelValue::Timestamp(timestamp),
            )]),
        );
        let values = obj.map_or(0, count_values) + returned_status.map_or(0, count_values);
        Row { context, values }
    }
}

/// The JSON values in `value`, itself included.
fn count_values(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_values).sum(),
        Value::Object(entries) => entries.values().map(count_values).sum(),
        _ => 0,
    }
}

/// Go's zero `time.Time` (January 1 of year 1, UTC), what KubeStellar gives before any
/// update.
fn zero_time() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z").expect("a valid time")
}

/// `value` as CEL, as Go's unstructured decoding gives it: integers that fit 64 bits
/// `int`, other numbers `double`.
pub fn to_cel(value: &Value) -> CelValue {
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => CelValue::Int(i),
            None => CelValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(items) => CelValue::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(entries) => {
            let map: HashMap<String, CelValue> = entries
                .iter()
                .map(|(k, v)| (k.clone(), to_cel(v)))
                .collect();
            CelValue::from(map)
        }
    }
}

/// A CEL value as a cell ([`Cell`]), with KubeStellar's encoding: strings, numbers,
/// booleans and null as themselves; lists, maps and timestamps as `Object` (their
/// JSON; a timestamp as its RFC 3339 string); what has no JSON form (bytes, types,
/// functions) as `Null`.
pub fn to_cell(value: &CelValue) -> Cell {
    match value {
        CelValue::Null => Cell::Null,
        CelValue::Bool(b) => Cell::Bool(*b),
        CelValue::Int(i) => Cell::int(*i),
        CelValue::UInt(u) => Cell::uint(*u),
        CelValue::Float(x) => Cell::float(*x),
        CelValue::String(s) => Cell::String(s.to_string()),
        other => match to_json(other) {
            Some(json) => Cell::object(&json),
            None => Cell::Null,
        },
    }
}

/// A CEL value as JSON, for `Object` cells and group keys (`None`: no JSON form).
pub fn to_json(value: &CelValue) -> Option<Value> {
    Some(match value {
        CelValue::Null => Value::Null,
        CelValue::Bool(b) => Value::Bool(*b),
        CelValue::Int(i) => Value::from(*i),
        CelValue::UInt(u) => Value::from(*u),
        CelValue::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        CelValue::String(s) => Value::String(s.to_string()),
        CelValue::List(items) => Value::Array(items.iter().map(to_json).collect::<Option<_>>()?),
        CelValue::Map(map) => {
            let mut entries: Vec<(String, Value)> = Vec::with_capacity(map.map.len());
            for (key, v) in map.map.iter() {
                let key = match key {
                    cel::objects::Key::String(s) => s.to_string(),
                    cel::objects::Key::Int(i) => i.to_string(),
                    cel::objects::Key::Uint(u) => u.to_string(),
                    cel::objects::Key::Bool(b) => b.to_string(),
                };
                entries.push((key, to_json(v)?));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        CelValue::Timestamp(t) => {
            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        CelValue::Duration(d) => {
            Value::String(format!("{}s", d.num_milliseconds() as f64 / 1000.0))
        }
        _ => return None,
    })
}

/// The CEL type name of a value, for error messages (`string`, `map`, ...).
pub fn type_name(value: &CelValue) -> &'static str {
    match value {
        CelValue::Null => "null_type",
        CelValue::Bool(_) => "bool",
        CelValue::Int(_) => "int",
        CelValue::UInt(_) => "uint",
        CelValue::Float(_) => "double",
        CelValue::String(_) => "string",
        CelValue::Bytes(_) => "bytes",
        CelValue::List(_) => "list",
        CelValue::Map(_) => "map",
        CelValue::Timestamp(_) => "google.protobuf.Timestamp",
        CelValue::Duration(_) => "google.protobuf.Duration",
        _ => "unknown",
    }
}

/// `message`, cut at [`MAX_ERROR_BYTES`] (on a character boundary).
fn cut(message: &str) -> String {
    if message.len() <= MAX_ERROR_BYTES {
        return message.to_string();
    }
    let mut end = MAX_ERROR_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// An upper bound of the bracket nesting of `source`, skipping string literals: linear,
/// before the parser (which recurses as deep) runs.
fn nesting(source: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '"' | '\'' => {
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        d if d == c => break,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    max
}

/// What a walk of an expression's parsed form finds.
#[derive(Default)]
struct Walk {
    uses: Uses,
    undeclared: Vec<String>,
    comprehension_depth: usize,
}

impl Walk {
    /// Walks `e`, with `scope` the comprehension variables in scope and `depth` the
    /// comprehensions around it.
    fn expr(&mut self, e: &IdedExpr, scope: &mut Vec<String>, depth: usize) {
        match &e.expr {
            Expr::Ident(name) => self.ident(name, scope),
            Expr::Select(select) => self.expr(&select.operand, scope, depth),
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    self.expr(target, scope, depth);
                }
                for arg in &call.args {
                    self.expr(arg, scope, depth);
                }
            }
            Expr::List(list) => {
                for element in &list.elements {
                    self.expr(element, scope, depth);
                }
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    self.entry(&entry.expr, scope, depth);
                }
            }
            Expr::Struct(st) => {
                for entry in &st.entries {
                    self.entry(&entry.expr, scope, depth);
                }
            }
            Expr::Comprehension(c) => {
                let depth = depth + 1;
                self.comprehension_depth = self.comprehension_depth.max(depth);
                self.expr(&c.iter_range, scope, depth);
                self.expr(&c.accu_init, scope, depth);
                let before = scope.len();
                scope.push(c.iter_var.clone());
                if let Some(v2) = &c.iter_var2 {
                    scope.push(v2.clone());
                }
                scope.push(c.accu_var.clone());
                self.expr(&c.loop_cond, scope, depth);
                self.expr(&c.loop_step, scope, depth);
                self.expr(&c.result, scope, depth);
                scope.truncate(before);
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn entry(&mut self, entry: &EntryExpr, scope: &mut Vec<String>, depth: usize) {
        match entry {
            EntryExpr::MapEntry(m) => {
                self.expr(&m.key, scope, depth);
                self.expr(&m.value, scope, depth);
            }
            EntryExpr::StructField(f) => self.expr(&f.value, scope, depth),
        }
    }

    fn ident(&mut self, name: &str, scope: &[String]) {
        if scope.iter().any(|s| s == name) {
            return;
        }
        match name {
            "inventory" => self.uses.inventory = true,
            "obj" => self.uses.obj = true,
            "returned" => self.uses.returned = true,
            "propagation" => self.uses.propagation = true,
            // Type names and the standard library's identifiers.
            "int" | "uint" | "double" | "bool" | "string" | "bytes" | "list" | "map"
            | "null_type" | "type" | "dyn" => {}
            other => self.undeclared.push(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn eval(source: &str, row: &Row) -> Result<Cell, String> {
        Expression::compile(source)?
            .evaluate(row)
            .map(|v| to_cell(&v))
    }

    #[test]
    fn the_four_variables_hold_what_kubestellar_gives() {
        let obj = json!({"spec": {"replicas": 2}, "metadata": {"name": "web"}});
        let status = json!({"availableReplicas": 2, "phase": "Running", "ratio": 0.5});
        let row = Row::new(
            "c1",
            Some(&obj),
            Some(&status),
            Some("2026-12-07T10:00:00Z"),
        );
        assert_eq!(eval("inventory.name", &row), Ok(Cell::String("c1".into())));
        assert_eq!(
            eval(
                "obj.spec.replicas == returned.status.availableReplicas",
                &row
            ),
            Ok(Cell::Bool(true))
        );
        // JSON integers are `int`: arithmetic with int literals works (the crate's serde
        // path would make them `uint`).
        assert_eq!(
            eval("returned.status.availableReplicas + 1", &row),
            Ok(Cell::int(3))
        );
        assert_eq!(
            eval("returned.status.ratio * 2.0", &row),
            Ok(Cell::float(1.0))
        );
        assert_eq!(
            eval("returned.status", &row),
            Ok(Cell::object(
                &json!({"availableReplicas": 2, "phase": "Running", "ratio": 0.5})
            ))
        );
        assert_eq!(
            eval("propagation.lastReturnedUpdateTimestamp", &row),
            Ok(Cell::object(&json!("2026-12-07T10:00:00Z")))
        );
        // No WorkStatus (or no status in it): an empty map, as KubeStellar's blank one.
        let blank = Row::new("c2", None, None, None);
        assert_eq!(eval("size(returned.status)", &blank), Ok(Cell::int(0)));
        assert!(eval("returned.status.phase", &blank).is_err());
        assert_eq!(
            eval("propagation.lastReturnedUpdateTimestamp", &blank),
            Ok(Cell::object(&json!("0001-01-01T00:00:00Z")))
        );
        assert_eq!(
            eval("returned.status.exists(k, k == 'phase')", &row),
            Ok(Cell::Bool(true))
        );
    }

    #[test]
    fn what_an_expression_reads_comes_from_its_parsed_form() {
        let uses = |s: &str| Expression::compile(s).unwrap().uses();
        assert_eq!(
            uses("returned.status.objectCount == obj.spec.x"),
            Uses {
                obj: true,
                returned: true,
                ..Uses::default()
            },
            "KubeStellar's text scan loops forever on this one"
        );
        assert!(
            !uses("'obj' == inventory.name").obj,
            "a string is no reference"
        );
        assert!(!uses("returned.status.conditions.exists(obj, obj.type == 'Ready')").obj);
        let err = Expression::compile("foo.bar == 1").unwrap_err();
        assert!(
            err.starts_with("failed to check expression: undeclared reference to 'foo'"),
            "{err}"
        );
        let err = Expression::compile("obj.x == 1 &&").unwrap_err();
        assert!(err.starts_with("failed to parse expression: "), "{err}");
        assert!(Expression::compile("int(obj.x) + 1 == 2").is_ok());
    }

    #[test]
    fn hostile_expressions_are_refused_before_they_cost() {
        let long = format!("inventory.name == '{}'", "x".repeat(MAX_EXPRESSION_BYTES));
        assert!(
            Expression::compile(&long)
                .unwrap_err()
                .starts_with("failed to parse expression: longer than")
        );
        let deep = format!("{}1{}", "(".repeat(1_000), ")".repeat(1_000));
        assert_eq!(
            Expression::compile(&deep).unwrap_err(),
            format!("failed to parse expression: nested deeper than {MAX_NESTING} levels")
        );
        let three = "[1].all(a, [2].all(b, [3].all(c, a < b)))";
        assert!(
            Expression::compile(three)
                .unwrap_err()
                .starts_with("failed to check expression: more than 2 macros")
        );
        assert!(Expression::compile("[1].all(a, [2].all(b, a < b))").is_ok());
        // Two nested macros over a large row are refused for that row, before they run.
        let big = json!({"items": (0..20_000).collect::<Vec<_>>()});
        let row = Row::new("c1", Some(&big), None, None);
        let quadratic = "obj.items.all(a, obj.items.exists(b, a == b))";
        let err = eval(quadratic, &row).unwrap_err();
        assert!(err.contains("too costly for this row"), "{err}");
        assert_eq!(
            eval("obj.items.exists(a, a == 19999)", &row),
            Ok(Cell::Bool(true))
        );
        let small = json!({"items": [1, 2, 3]});
        let row = Row::new("c1", Some(&small), None, None);
        assert_eq!(eval(quadratic, &row), Ok(Cell::Bool(true)));
        // An evaluation error quoting a huge value is cut.
        let obj = json!({"big": "y".repeat(10_000)});
        let row = Row::new("c1", Some(&obj), None, None);
        let err = eval("obj.big / 2", &row).unwrap_err();
        let prefix = "failed to evaluate expression: ";
        assert!(err.starts_with(prefix), "{err}");
        assert!(
            err.len() <= prefix.len() + MAX_ERROR_BYTES + '…'.len_utf8(),
            "{}",
            err.len()
        );
    }

    /// The runtime errors KubeStellar's cel-go reports, in its words (the side by side
    /// found `No such key` against cel-go's `no such key`).
    #[test]
    fn runtime_errors_read_as_cel_go_reports_them() {
        let status = json!({"replicas": 2, "phase": "Running"});
        let row = Row::new("c1", None, Some(&status), None);
        let prefix = "failed to evaluate expression: ";
        for (expression, message) in [
            (
                "returned.status.availableReplicas",
                "no such key: availableReplicas",
            ),
            ("returned.status.replicas / 0", "division by zero"),
            ("returned.status.replicas % 0", "modulus by zero"),
            (
                "returned.status.replicas + returned.status.phase",
                "no such overload",
            ),
            (
                "9223372036854775807 + returned.status.replicas",
                "integer overflow",
            ),
        ] {
            assert_eq!(
                eval(expression, &row),
                Err(format!("{prefix}{message}")),
                "{expression}"
            );
        }
    }
}
