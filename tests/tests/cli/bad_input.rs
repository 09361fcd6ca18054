//! Bad input through the binary: every case ends with a clear error (or, for a closed
//! stdout, quietly), never a panic, and bad policies do not stop the others.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use bindery_tests::watch_log::{self, NAMESPACES, POLICIES, WECS, event};
use bindery_tests::{bindery_bin, bindery_command, run_bindery, stderr, workspace_root};
use serde_json::{Value, json};

fn example(name: &str) -> String {
    workspace_root()
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

fn assert_no_panic(out: &Output, what: &str) {
    let err = stderr(out);
    assert!(
        !err.contains("panicked") && out.status.code().is_some_and(|c| c != 101),
        "{what}: {:?}\n{err}",
        out.status
    );
}

/// Runs bindery with `args` and stdout set to `stdout`.
fn run_with_stdout(args: &[&str], stdout: impl Into<Stdio>) -> Output {
    bindery_command()
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("running bindery")
}

/// Every command that prints on stdout, on the nginx example.
fn printing_commands() -> Vec<Vec<String>> {
    let log = example("nginx.jsonl");
    let edited = example("nginx-edited.yaml");
    let cmds: Vec<Vec<&str>> = vec![
        vec!["crds"],
        vec!["explain", "--log", &log, "--policy", "nginx"],
        vec!["explain", "--log", &log, "--policy", "nginx", "-o", "json"],
        vec!["replay", &log, "--dump-bindings", "-"],
        vec!["replay", &log, "--emit-deltas"],
        vec!["replay", &log, "--with-policy", &edited],
        vec!["dry-run", "--log", &log, "--policy-file", &edited],
        vec!["history", "--log", &log],
        vec!["history", "--log", &log, "-o", "json"],
        vec![
            "dry-run",
            "--log",
            &log,
            "--policy-file",
            &edited,
            "-o",
            "yaml",
        ],
    ];
    cmds.into_iter()
        .map(|c| c.into_iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    for cmd in printing_commands() {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        // A pipe whose reading end is closed before the command writes (`| true`).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = run_with_stdout(&args, writer);
        assert_no_panic(&out, &cmd.join(" "));
        assert!(
            out.status.success(),
            "{cmd:?}: {:?}\n{}",
            out.status,
            stderr(&out)
        );
        assert!(!stderr(&out).contains("ERROR"), "{cmd:?}: {}", stderr(&out));
    }
}

#[test]
fn a_full_stdout_is_an_error_naming_stdout() {
    for cmd in printing_commands() {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = run_with_stdout(&args, full);
        assert_no_panic(&out, &cmd.join(" "));
        assert!(!out.status.success(), "{cmd:?}");
        assert!(
            stderr(&out).contains("writing to stdout: No space left on device"),
            "{cmd:?}: {}",
            stderr(&out)
        );
    }
}

/// The SYNCED event of `resource` at `ts`.
fn synced(ts: i64, resource: &str) -> Value {
    event(ts, resource, "SYNCED", None)
}

/// WEC `name` with `labels` added at `ts`.
fn wec(ts: i64, name: &str, labels: Value) -> Value {
    let metadata = json!({"name": name, "uid": format!("u-{name}"), "resourceVersion": "1",
                          "labels": labels});
    event(ts, WECS, "ADDED", Some(json!({"metadata": metadata})))
}

/// Policy `name` with `spec` added at `ts`.
fn policy(ts: i64, name: &str, spec: Value) -> Value {
    let metadata = json!({"name": name, "uid": format!("u-{name}"), "generation": 1});
    event(
        ts,
        POLICIES,
        "ADDED",
        Some(json!({"metadata": metadata, "spec": spec})),
    )
}

/// Spawns bindery with `args` and checks it is still running (not panicked) after a
/// while, then kills it.
fn still_running_after(args: &[&str], wait: Duration) {
    let mut child = bindery_command()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < wait {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!("{args:?} ended early: {status:?}\n{}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn tiny_speeds_and_huge_gaps_wait_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let its = |ts| synced(ts, WECS);
    let small_gap = watch_log::write(dir.path(), "gap.jsonl", &[its(0), its(1)]);
    let huge_gap = watch_log::write(dir.path(), "huge.jsonl", &[its(i64::MIN), its(i64::MAX)]);
    let (small_gap, huge_gap) = (small_gap.to_str().unwrap(), huge_gap.to_str().unwrap());
    // 1 ms at speed 1e-300 is 1e300 ms: more than a Duration holds.
    still_running_after(
        &["replay", small_gap, "--speed", "1e-300"],
        Duration::from_millis(1500),
    );
    // ~2^64 ms: more than an Instant can add.
    still_running_after(
        &["replay", huge_gap, "--speed", "1"],
        Duration::from_millis(1500),
    );
    for speed in ["0", "-1", "NaN", "inf", "-0", "x"] {
        let out = run_bindery(&["replay", small_gap, &format!("--speed={speed}")]);
        assert_no_panic(&out, speed);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("is not a speed"),
            "{speed}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn nonsense_numbers_and_conflicting_outputs_are_refused() {
    let log = example("nginx.jsonl");
    let dir = tempfile::tempdir().unwrap();
    // A kubeconfig that loads (nothing listens there): the timeout is the first problem.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap();
    let max = u64::MAX.to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["replay", &log, "--window-ms=-1"],
            "invalid value '-1' for '--window-ms <MS>'",
        ),
        (
            vec!["replay", &log, "--dump-bindings", "-", "--emit-deltas"],
            "--emit-deltas prints the deltas on stdout: give --dump-bindings a file, not -",
        ),
        (
            vec![
                "explain",
                "--wds-kubeconfig",
                kubeconfig,
                "--its-kubeconfig",
                kubeconfig,
                "--policy",
                "p",
                "--sync-timeout",
                &max,
            ],
            "invalid value '18446744073709551615' for '--sync-timeout <SECONDS>'",
        ),
        (
            vec![
                "run",
                "--wds-kubeconfig",
                kubeconfig,
                "--its-kubeconfig",
                kubeconfig,
                "--coalesce-ms",
                &max,
            ],
            "invalid value '18446744073709551615' for '--coalesce-ms <MS>'",
        ),
    ];
    for (args, want) in cases {
        let out = run_bindery(&args);
        assert_no_panic(&out, &args.join(" "));
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
}

/// The nginx example's state with a policy file `text` dry-run on it.
fn dry_run(text: &[u8]) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, text).unwrap();
    let file = file.display().to_string();
    let out = run_bindery(&[
        "dry-run",
        "--log",
        &example("nginx.jsonl"),
        "--policy-file",
        &file,
    ]);
    assert_no_panic(&out, &file);
    (out, file)
}

#[test]
fn policy_files_with_a_bom_duplicate_keys_unknown_fields_or_a_list_spec() {
    let bom = format!(
        "\u{feff}{}",
        std::fs::read_to_string(example("nginx-edited.yaml")).unwrap()
    );
    let (out, _) = dry_run(bom.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    let binding: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        binding["spec"]["destinations"],
        json!([{"clusterId": "cluster1"}])
    );

    let cases = [
        (
            "metadata: {name: p}\nspec: [[{}], [{resources: ['*']}]]\n",
            "spec is not an object (it is a list), so the policy binds nothing",
        ),
        (
            "metadata: {name: p}\nspec:\n  clusterSelectors: [{matchLabel: {location-group: edge}}]\n  downsync: [{resources: [namespaces]}]\n",
            "spec.clusterSelectors[0]: invalid label selector, it matches nothing: unknown field \"matchLabel\"",
        ),
        (
            "metadata: {name: p}\nspec:\n  clusterSelectors: [{matchLabels: {location-group: edge, location-group: core}}]\n  downsync: [{resources: [namespaces]}]\n",
            "spec.clusterSelectors[0]: invalid label selector, it matches nothing: matchLabels: duplicate key \"location-group\"",
        ),
        (
            r#"{"metadata": {"name": "p"}, "spec": {"clusterSelectors": [{}], "downsync": [{"resources": ["namespaces"], "resources": ["deployments"]}]}}"#,
            "spec.downsync[0]: cannot be read, so it selects nothing: duplicate key \"resources\"",
        ),
    ];
    for (text, problem) in cases {
        let (out, file) = dry_run(text.as_bytes());
        assert!(out.status.success(), "{text}: {}", stderr(&out));
        assert!(stderr(&out).contains(problem), "{text}: {}", stderr(&out));
        let binding: Value = serde_json::from_slice(&out.stdout).unwrap();
        let spec = &binding["spec"];
        let bound = spec["destinations"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
            && spec["workload"].as_object().is_some_and(|w| !w.is_empty());
        assert!(!bound, "{file}: {text}: binds {binding}");
    }
}

#[test]
fn deeply_nested_policy_files_are_refused_quickly() {
    let n = 100_000;
    let flow = format!("{}{}", "[".repeat(n), "]".repeat(n));
    let block = format!("metadata: {{name: p}}\nspec:\n{}x\n", "- ".repeat(n));
    let json = format!(
        "{{\"metadata\": {{\"name\": \"p\"}}, \"spec\": {}{}}}",
        "{\"a\":".repeat(n),
        "1".to_string() + &"}".repeat(n)
    );
    bindery_bin(); // built before the clock starts
    for text in [flow, block, json] {
        let start = Instant::now();
        let (out, file) = dry_run(text.as_bytes());
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        assert!(!out.status.success());
        // (YAML errors also say where: `spec[0][0]...: nested deeper than 64 levels at line 3`.)
        let want = format!("{file}: expected one BindingPolicy object (YAML or JSON): ");
        let err = stderr(&out);
        assert!(
            err.contains(&want) && err.contains("nested deeper than 64 levels"),
            "{err}"
        );
    }
}

#[test]
fn bad_policies_in_a_log_are_reported_and_the_others_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let edge = json!({"matchLabels": {"location-group": "edge"}});
    let namespaces = json!({"resources": ["namespaces"]});
    let log = watch_log::write(
        dir.path(),
        "policies.jsonl",
        &[
            wec(1, "cluster1", json!({"location-group": "edge"})),
            synced(2, WECS),
            event(
                3,
                NAMESPACES,
                "ADDED",
                Some(json!({"metadata": {"name": "ns1", "uid": "ns1", "resourceVersion": "1"}})),
            ),
            synced(4, NAMESPACES),
            policy(
                5,
                "good",
                json!({"clusterSelectors": [edge], "downsync": [namespaces]}),
            ),
            policy(5, "list", json!([[{}], [{"resources": ["*"]}]])),
            policy(
                5,
                "misspelled",
                json!({"clusterSelectors": [{"matchLabel": {"location-group": "edge"}}], "downsync": [namespaces]}),
            ),
            policy(
                5,
                "clause",
                json!({"clusterSelectors": [edge], "downsync": [{"resources": ["namespaces"], "objectSelector": [{}]}]}),
            ),
            synced(6, POLICIES),
        ],
    );
    let out = run_bindery(&["replay", log.to_str().unwrap(), "--dump-bindings", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let spec = |name: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no Binding {name}"))["spec"]
            .clone()
    };
    assert_eq!(
        spec("good")["destinations"],
        json!([{"clusterId": "cluster1"}])
    );
    assert_eq!(
        spec("good")["workload"]["clusterScope"][0]["name"],
        json!("ns1")
    );
    assert_eq!(spec("list"), json!({"workload": {}}));
    assert_eq!(spec("misspelled")["destinations"], Value::Null);
    assert_eq!(spec("clause")["workload"], json!({}));
    let out = run_bindery(&["replay", log.to_str().unwrap(), "--emit-deltas"]);
    let deltas = String::from_utf8_lossy(&out.stdout);
    for problem in [
        "spec is not an object (it is a list), so the policy binds nothing",
        "spec.clusterSelectors[0]: invalid label selector, it matches nothing: unknown field \\\"matchLabel\\\"",
        "spec.downsync[0]: cannot be read, so it selects nothing: unknown field `objectSelector`",
    ] {
        assert!(deltas.contains(problem), "{problem}: {deltas}");
    }
}

#[test]
fn duplicate_keys_in_a_logged_policy_are_its_problem() {
    let dir = tempfile::tempdir().unwrap();
    // Written out: a JSON value cannot hold a duplicate key.
    let policy = r#"{"ts":3,"space":"wds","group":"control.kubestellar.io","version":"v1alpha1","resource":"bindingpolicies","type":"ADDED","object":{"metadata":{"name":"p","uid":"u","generation":1},"spec":{"clusterSelectors":[{"matchLabels":{"location-group":"core","location-group":"edge"}}]}}}"#;
    let lines = [
        watch_log::HEADER.to_string(),
        wec(1, "cluster1", json!({"location-group": "edge"})).to_string(),
        synced(2, WECS).to_string(),
        policy.to_string(),
        // A resource seen first after the others synced counts once its own SYNCED is in.
        synced(4, POLICIES).to_string(),
    ];
    let log = watch_log::write_lines(dir.path(), "dups.jsonl", &lines);
    let out = run_bindery(&["explain", "--log", log.to_str().unwrap(), "--policy", "p"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("spec.clusterSelectors[0]: invalid label selector, it matches nothing: matchLabels: duplicate key \"location-group\""),
        "{text}"
    );
    assert!(text.contains("destinations: 0 of 1 WECs"), "{text}");
}

#[test]
fn overlong_lines_are_errors_naming_the_line_and_dev_zero_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.jsonl");
    let mut text = b"{\"watchLog\":1}\n".to_vec();
    text.extend(b"{\"ts\":1,\"pad\":\"");
    text.resize(text.len() + bindery_ingest::MAX_LINE_BYTES, b'x');
    text.extend(b"\"}\n");
    std::fs::write(&path, &text).unwrap();
    let out = run_bindery(&["replay", path.to_str().unwrap()]);
    assert_no_panic(&out, "long line");
    assert!(!out.status.success());
    let want = format!("{}:2: line longer than 16 MiB", path.display());
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));

    // A NUL-filled tail (a crash) longer than the limit: a torn last line, ignored.
    let path = dir.path().join("zeros.jsonl");
    let mut text = std::fs::read(example("nginx.jsonl")).unwrap();
    text.resize(text.len() + 2 * bindery_ingest::MAX_LINE_BYTES, 0);
    std::fs::write(&path, &text).unwrap();
    let out = run_bindery(&["replay", path.to_str().unwrap(), "--dump-bindings", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("incomplete last line (no trailing newline, longer than 16 MiB), ignored"),
        "{}",
        stderr(&out)
    );
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(example("nginx.bindings.json")).unwrap())
            .unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), want);

    // Endless: the first line is refused once past the limit.
    let out = run_bindery(&["replay", "/dev/zero"]);
    assert_no_panic(&out, "/dev/zero");
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("/dev/zero:1: not a watch log header: the first line is longer than 16 MiB"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn control_characters_in_names_are_escaped_in_explain_text() {
    let dir = tempfile::tempdir().unwrap();
    let log = watch_log::write(
        dir.path(),
        "names.jsonl",
        &[
            wec(
                1,
                "evil\ncluster\u{1b}[2J",
                json!({"location-group": "edge\u{7}"}),
            ),
            synced(2, WECS),
            policy(
                3,
                "p",
                json!({"clusterSelectors": [{"matchLabels": {"location-group": "edge"}}]}),
            ),
            synced(4, POLICIES),
        ],
    );
    let out = run_bindery(&[
        "explain",
        "--log",
        log.to_str().unwrap(),
        "--policy",
        "p",
        "--cluster",
        "evil\ncluster\u{1b}[2J",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("cluster evil\\ncluster\\u{1b}[2J: not a destination"),
        "{text}"
    );
    assert!(text.contains("location-group=edge\\u{7}"), "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text}"
    );
}

/// A file read whole that never ends (`/dev/zero` as a policy file or a hosts file) is
/// refused once past its limit, at once and without growing: the error names the file
/// and the limit.
#[test]
fn endless_files_read_whole_are_refused_at_their_limit() {
    let nginx = example("nginx.jsonl");
    let cases: [(&[&str], &str); 3] = [
        (
            &["dry-run", "--log", &nginx, "--policy-file", "/dev/zero"],
            "reading the policy file /dev/zero: larger than 6291456 bytes, the limit of a policy file",
        ),
        (
            &["replay", &nginx, "--with-policy", "/dev/zero"],
            "reading the policy file /dev/zero: larger than 6291456 bytes, the limit of a policy file",
        ),
        (
            &["replay", &nginx, "--processes", "2", "--hosts", "/dev/zero"],
            "reading the hosts file /dev/zero: larger than 1048576 bytes, the limit of a hosts file",
        ),
    ];
    for (args, want) in cases {
        let started = Instant::now();
        let out = run_bindery(args);
        assert_no_panic(&out, &args.join(" "));
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
}

/// A malformed kubeconfig holding a token and a key: every command that reads it says
/// which file, line and column, and quotes none of it (the error goes to a pod's log).
#[test]
fn kubeconfig_errors_name_the_place_and_never_quote_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = ["SECRET-TOKEN-123", "S3CR3T-KEY-DATA"];
    let user = format!(
        "users:\n- name: u\n  user:\n    token: {}\n    client-key-data: {}\n",
        secrets[0], secrets[1]
    );
    let files = [
        (
            "syntax.kc",
            format!("apiVersion: v1\n{user}  bad: [unclosed\nclusters: []\n"),
            "line 8, column 9: not valid YAML",
        ),
        (
            "type.kc",
            format!("apiVersion: v1\n{user}clusters: {}\n", secrets[0]),
            "line 7, column 11: not a kubeconfig: clusters: invalid type",
        ),
    ];
    let policy = example("nginx-edited.yaml");
    for (name, text, want) in files {
        let kc = dir.path().join(name);
        std::fs::write(&kc, text).unwrap();
        let kc = kc.to_str().unwrap();
        let runs: [Vec<&str>; 3] = [
            vec![
                "explain",
                "--wds-kubeconfig",
                kc,
                "--its-kubeconfig",
                kc,
                "--policy",
                "p",
            ],
            vec!["dry-run", "--wds-kubeconfig", kc, "--policy-file", &policy],
            vec!["run", "--wds-kubeconfig", kc, "--listen", "127.0.0.1:0"],
        ];
        for args in runs {
            let out = run_bindery(&args);
            let err = stderr(&out);
            assert_no_panic(&out, &args.join(" "));
            assert!(!out.status.success(), "{args:?}");
            assert!(
                err.contains(&format!("WDS: reading the kubeconfig {kc}: {want}")),
                "{args:?}: {err}"
            );
            for secret in secrets {
                assert!(!err.contains(secret), "{args:?} quotes {secret}: {err}");
            }
            assert_eq!(
                err.matches(want).count(),
                1,
                "the cause is said once: {err}"
            );
        }
    }
    // KUBECONFIG naming it: the same, for the default kubeconfig.
    let kc = dir.path().join("syntax.kc");
    let out = bindery_command()
        .args(["explain", "--policy", "p"])
        .env("KUBECONFIG", &kc)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("line 8, column 9: not valid YAML"), "{err}");
    assert!(secrets.iter().all(|s| !err.contains(s)), "{err}");
}
