//! Dry-runs of a BindingPolicy: the Binding a new or edited policy would get, on the
//! state at the end of a watch log or on the current state of live servers, without
//! writing anything anywhere.
//!
//! - [`DryRunPolicy`]: the policy file (one BindingPolicy, YAML or JSON), checked, and
//!   turned into the watch event that adds or edits it (also used by `bindery replay
//!   --with-policy`, which re-exports it from [`crate::cmd::replay`]).
//! - [`dry_run`]: `bindery dry-run`: loads the state into the oracle ([`crate::input::loader`]:
//!   a log through to its end, or a live [`snapshot`](crate::input::snapshot)), applies the
//!   policy and prints its Binding (stdout) and problems (stderr). Only that policy's
//!   Binding is computed: no dataflow, no other policy.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bindery_engine::strict_json::StrictValue;
use bindery_engine::{Binding, Engine};
use bindery_ingest::feed::{POLICY_GROUP, POLICY_RESOURCE};
use bindery_ingest::live::{marker_event, now_ms};
use bindery_ingest::{EventType, ResourceRef, Space, WatchEvent};
use serde::de::DeserializeSeed;
use serde_json::Value;

use crate::files;
use crate::input::loader::{self, Loader, OracleLoader, Target};
use crate::input::snapshot::{StateArgs, StateSource};

/// How a dry-run prints the Binding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DryRunFormat {
    /// Pretty JSON (what `bindery replay --with-policy` prints).
    #[default]
    Json,
    /// YAML, fields in the same order.
    Yaml,
}

/// The flags of `bindery dry-run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the state comes from.
    #[command(flatten)]
    source: StateArgs,
    /// The BindingPolicy (one object, YAML or JSON). Without `metadata.uid` it keeps
    /// the uid of the policy of that name, if there is one (`dry-run` otherwise).
    #[arg(long, value_name = "FILE.yaml")]
    policy_file: PathBuf,
    /// How to print the Binding: `json` (default) or `yaml`.
    #[arg(short = 'o', long, value_enum, default_value_t = DryRunFormat::Json)]
    output: DryRunFormat,
}

impl Args {
    /// The options these flags give, checked.
    pub fn options(self) -> Result<DryRunOptions> {
        Ok(DryRunOptions {
            source: self.source.source()?,
            policy_file: self.policy_file,
            output: self.output,
        })
    }
}

/// `bindery dry-run`: prints the Binding on stdout and the problems on stderr.
pub fn execute(args: Args) -> Result<()> {
    dry_run(&args.options()?)?;
    Ok(())
}

/// Options of `bindery dry-run`.
#[derive(Clone, Debug)]
pub struct DryRunOptions {
    /// Where the state comes from: a watch log's end or live servers.
    pub source: StateSource,
    /// The BindingPolicy file (one object, YAML or JSON), a new or an edited policy.
    pub policy_file: PathBuf,
    /// How to print the Binding.
    pub output: DryRunFormat,
}

/// What a dry-run found: the policy's Binding and problems.
#[derive(Clone, Debug, PartialEq)]
pub struct DryRunOutcome {
    /// The Binding the policy would get.
    pub binding: Binding,
    /// The policy's problems (what its status `errors` would say), sorted.
    pub problems: Vec<String>,
}

impl DryRunOutcome {
    /// The Binding rendered as `format` (ends with a newline).
    pub fn render(&self, format: DryRunFormat) -> Result<String> {
        let json = self.binding.to_json();
        Ok(match format {
            DryRunFormat::Json => serde_json::to_string_pretty(&json)? + "\n",
            DryRunFormat::Yaml => serde_yaml_ng::to_string(&json)?,
        })
    }
}

/// Runs `bindery dry-run`: reads the policy file, loads the state of `opts.source`,
/// applies the policy, prints its Binding on stdout and its problems on stderr, and
/// returns them. Writes nothing else, to no server and no file.
pub fn dry_run(opts: &DryRunOptions) -> Result<DryRunOutcome> {
    // The file first: a bad file fails before any (possibly long) read of the state.
    let policy = DryRunPolicy::read(&opts.policy_file)?;
    let mut loader = loader::load(&opts.source)?;
    let outcome = policy.apply(&mut loader, now_ms())?;
    crate::cmd::stdout::print(&outcome.render(opts.output)?)?;
    policy.print_problems(&outcome.problems);
    Ok(outcome)
}

/// A BindingPolicy read from a file for a dry-run (`bindery dry-run`, `bindery replay
/// --with-policy`).
#[derive(Clone, Debug)]
pub struct DryRunPolicy {
    /// `metadata.name`: the policy (and Binding) name.
    pub name: String,
    /// The whole object, as read.
    object: Value,
    /// The file it came from, for messages.
    pub(crate) source: String,
}

impl DryRunPolicy {
    /// Reads one BindingPolicy object from a YAML or JSON file.
    pub fn read(path: &Path) -> Result<DryRunPolicy> {
        let source = path.display().to_string();
        let text = files::read_to_string(path, MAX_POLICY_FILE_BYTES, "a policy file")
            .map_err(|e| anyhow::anyhow!("reading the policy file {e}"))?;
        DryRunPolicy::parse(&text, &source)
    }

    /// Parses one BindingPolicy object (YAML or JSON); `source` names it in errors. A
    /// leading UTF-8 byte order mark is skipped; nesting deeper than
    /// `MAX_POLICY_FILE_DEPTH` is refused; duplicate keys are kept track of (the
    /// policy reports them as problems: [`bindery_engine::strict_json`]).
    pub fn parse(text: &str, source: &str) -> Result<DryRunPolicy> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let object = read_one_document(text).with_context(|| {
            format!("{source}: expected one BindingPolicy object (YAML or JSON)")
        })?;
        let Value::Object(map) = &object else {
            bail!(
                "{source}: expected one BindingPolicy object, got {}",
                kind_of(&object)
            );
        };
        if let Some(kind) = map.get("kind").filter(|k| !k.is_null())
            && kind.as_str() != Some("BindingPolicy")
        {
            bail!("{source}: kind is {kind}, expected \"BindingPolicy\"");
        }
        if let Some(api_version) = map.get("apiVersion").filter(|v| !v.is_null())
            && !api_version
                .as_str()
                .is_some_and(|v| v.starts_with(&format!("{POLICY_GROUP}/")))
        {
            bail!("{source}: apiVersion is {api_version}, expected {POLICY_GROUP}/v1alpha1");
        }
        let meta = map.get("metadata");
        let name = match meta.and_then(|m| m.get("name")) {
            Some(Value::String(n)) if !n.is_empty() => n.clone(),
            _ => bail!("{source}: metadata.name is required (a non-empty string)"),
        };
        if meta
            .and_then(|m| m.get("deletionTimestamp"))
            .is_some_and(|t| !t.is_null())
        {
            bail!(
                "{source}: metadata.deletionTimestamp is set: a policy being deleted has no Binding"
            );
        }
        Ok(DryRunPolicy {
            name,
            object,
            source: source.to_string(),
        })
    }

    /// The watch event that adds or edits the policy: the object, with `metadata.uid`
    /// (if absent: `existing_uid`, the edited policy's, or `dry-run` for a new one) and
    /// `metadata.generation` (if absent: 1) filled in.
    pub fn event(&self, existing_uid: Option<&str>, ts: i64) -> WatchEvent {
        let mut object = self.object.clone();
        if let Some(Value::Object(meta)) = object.get_mut("metadata") {
            if meta.get("uid").is_none_or(Value::is_null) {
                let uid = existing_uid.unwrap_or("dry-run");
                meta.insert("uid".into(), Value::from(uid));
            }
            if meta.get("generation").is_none_or(Value::is_null) {
                meta.insert("generation".into(), Value::from(1));
            }
        }
        WatchEvent {
            ts,
            resource: ResourceRef::new(Space::Wds, POLICY_GROUP, "v1alpha1", POLICY_RESOURCE),
            event_type: EventType::Modified,
            object: Some(object),
        }
    }

    /// Applies the policy ([`DryRunPolicy::event`] at `ts`, keeping the uid of the
    /// policy of its name, if there is one) to the state in `loader`, the same way for
    /// the engine (`replay --with-policy`) and the oracle (`dry-run`). In a state without
    /// BindingPolicies the policy is their whole list. Refused while BindingPolicies
    /// relist: there is no consistent view of them to apply it to.
    pub fn apply_to<T: Target>(&self, loader: &mut Loader<T>, ts: i64) -> Result<()> {
        let existing_uid = loader.target().policy(&self.name).map(|p| p.uid.clone());
        let event = self.event(existing_uid.as_deref(), ts);
        let resource = event.resource.clone();
        let known = loader.knows(&resource);
        if known && loader.holds(&resource) {
            bail!(
                "{}: BindingPolicies are relisting ({resource}): the dry-run policy cannot be applied to a consistent view",
                self.source
            );
        }
        loader.push(event).with_context(|| self.source.clone())?;
        if !known {
            let synced = marker_event(&resource, EventType::Synced, ts);
            loader.push(synced).with_context(|| self.source.clone())?;
        }
        Ok(())
    }

    /// Applies the policy to the oracle's state in `loader` ([`apply_to`](Self::apply_to))
    /// and returns its Binding and problems, computed by the oracle for this policy
    /// alone.
    pub fn apply(&self, loader: &mut OracleLoader, ts: i64) -> Result<DryRunOutcome> {
        self.apply_to(loader, ts)?;
        let Some((binding, problems)) = loader.oracle().binding_and_problems(&self.name) else {
            bail!("dry-run BindingPolicy {:?} has no Binding", self.name);
        };
        Ok(DryRunOutcome { binding, problems })
    }

    /// The policy's Binding and problems in `engine` (once the policy is applied).
    pub fn outcome(&self, engine: &Engine) -> Result<DryRunOutcome> {
        let Some(binding) = engine.binding(&self.name) else {
            bail!("dry-run BindingPolicy {:?} has no Binding", self.name);
        };
        let problems = engine
            .status(&self.name)
            .map(|s| s.problems)
            .unwrap_or_default();
        Ok(DryRunOutcome { binding, problems })
    }

    /// Prints the policy's Binding (pretty JSON) on stdout and its problems on stderr.
    pub fn report(&self, engine: &Engine) -> Result<()> {
        let outcome = self.outcome(engine)?;
        crate::cmd::stdout::print(&outcome.render(DryRunFormat::Json)?)?;
        self.print_problems(&outcome.problems);
        Ok(())
    }

    /// Prints `problems` on stderr: `dry-run BindingPolicy "p": no problems`, or a count
    /// and one indented line each.
    /// A closed stderr is ignored (`eprintln!` would panic).
    pub fn print_problems(&self, problems: &[String]) {
        let mut text = if problems.is_empty() {
            format!("dry-run BindingPolicy {:?}: no problems\n", self.name)
        } else {
            format!(
                "dry-run BindingPolicy {:?}: {} problem(s):\n",
                self.name,
                problems.len()
            )
        };
        for p in problems {
            text.push_str(&format!("  {p}\n"));
        }
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

/// The largest policy file read: four times the largest object etcd stores by default
/// (1.5 MiB), room for comments and formatting.
pub const MAX_POLICY_FILE_BYTES: u64 = 6 << 20;

/// The deepest nesting of lists and objects a policy file may have (a BindingPolicy
/// needs 6; YAML's parser takes time quadratic in the depth of flow collections).
pub const MAX_POLICY_FILE_DEPTH: usize = 64;

/// Reads the one YAML (or JSON) document of `text` strictly: at most
/// [`MAX_POLICY_FILE_DEPTH`] levels (checked on the brackets before the YAML parser
/// sees the text, then on the value), duplicate keys marked.
fn read_one_document(text: &str) -> Result<Value> {
    if flow_depth(text) > MAX_POLICY_FILE_DEPTH {
        bail!("nested deeper than {MAX_POLICY_FILE_DEPTH} levels");
    }
    let mut documents = serde_yaml_ng::Deserializer::from_str(text);
    let Some(first) = documents.next() else {
        bail!("the file is empty");
    };
    let value = StrictValue::new(MAX_POLICY_FILE_DEPTH).deserialize(first)?;
    if documents.next().is_some() {
        bail!("the file has more than one YAML document");
    }
    Ok(value)
}

/// An upper bound of the nesting depth of YAML flow collections (`[`, `{`) in `text`,
/// skipping quoted strings and comments: linear, before the quadratic parser runs.
fn flow_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut chars = text.chars().peekable();
    let mut previous = '\n';
    while let Some(c) = chars.next() {
        match c {
            '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                }
            }
            '#' if previous.is_whitespace() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
        previous = c;
    }
    max
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_files_bom_depth_documents_and_duplicates() {
        let text = "metadata: {name: p}\nspec: {downsync: [{resources: [a], resources: [b]}]}\n";
        let bom = format!("\u{feff}{text}");
        let policy = DryRunPolicy::parse(&bom, "bom.yaml").unwrap();
        assert_eq!(policy.name, "p");
        let outcome = policy.apply(&mut OracleLoader::default(), 1).unwrap();
        assert_eq!(
            outcome.problems,
            vec![
                "spec.downsync[0]: cannot be read, so it selects nothing: duplicate key \"resources\""
            ]
        );
        let deep = format!(
            "metadata: {{name: p}}\nspec: {}{}\n",
            "[".repeat(65),
            "]".repeat(65)
        );
        let err = format!("{:#}", DryRunPolicy::parse(&deep, "deep.yaml").unwrap_err());
        assert_eq!(
            err,
            "deep.yaml: expected one BindingPolicy object (YAML or JSON): nested deeper than 64 levels"
        );
        // Brackets in quoted strings and comments are not nesting.
        let quoted = format!(
            "metadata: {{name: p}} # {0}\nspec: {{a: \"{0}\", b: '{0}'}}\n",
            "[".repeat(100)
        );
        assert!(DryRunPolicy::parse(&quoted, "q.yaml").is_ok());
        let err = format!(
            "{:#}",
            DryRunPolicy::parse("a: 1\n---\nb: 2\n", "two.yaml").unwrap_err()
        );
        assert!(
            err.ends_with("the file has more than one YAML document"),
            "{err}"
        );
        let err = format!("{:#}", DryRunPolicy::parse("", "empty.yaml").unwrap_err());
        assert!(err.contains("empty.yaml: "), "{err}");
    }

    /// A policy file that is not YAML: the error names the file, line and column, and
    /// quotes none of its lines.
    #[test]
    fn yaml_errors_name_the_place_not_the_content() {
        let text = "metadata:\n  name: p\n  note: TOPSECRET\nspec: [unclosed\nkind: x\n";
        let err = format!("{:#}", DryRunPolicy::parse(text, "p.yaml").unwrap_err());
        assert!(err.starts_with("p.yaml: "), "{err}");
        assert!(err.contains("at line 5 column 5"), "{err}");
        assert!(
            !err.contains("TOPSECRET") && !err.contains("unclosed"),
            "{err}"
        );
    }

    #[test]
    fn a_new_policy_gets_the_dry_run_uid_and_generation_1() {
        let policy = DryRunPolicy::parse(
            "kind: BindingPolicy\nmetadata: {name: p}\nspec: {downsync: [{resources: [configmaps]}]}\n",
            "p.yaml",
        )
        .unwrap();
        let mut loader = OracleLoader::default();
        let outcome = policy.apply(&mut loader, 7).unwrap();
        assert_eq!(outcome.binding.name, "p");
        assert_eq!(outcome.binding.policy_uid, "dry-run");
        assert!(outcome.problems.is_empty());
        assert_eq!(loader.oracle().statuses()["p"].0, 1);
        let yaml = outcome.render(DryRunFormat::Yaml).unwrap();
        assert!(yaml.starts_with("apiVersion: control.kubestellar.io/v1alpha1\nkind: Binding\n"));
        let json: Value =
            serde_json::from_str(&outcome.render(DryRunFormat::Json).unwrap()).unwrap();
        assert_eq!(serde_yaml_ng::from_str::<Value>(&yaml).unwrap(), json);
    }
}
