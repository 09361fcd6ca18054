//! The README's commands, as written there, through the built binary: every
//! `cargo run --release -- ...` line of its `sh` blocks that works on the example files
//! runs and does what the README says (the dashboard replay is sped up and stopped once
//! finished; the commands against live servers are covered by the e2e tests).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bindery_tests::{bindery_bin, http_get, terminate, workspace_root};
use serde_json::Value;

/// The README's `cargo run --release -- ARGS` commands (continuation lines joined), as
/// argument lists.
fn readme_commands() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        pending.push_str(line.trim_end_matches('\\'));
        pending.push(' ');
        if line.ends_with('\\') {
            continue;
        }
        if let Some(args) = pending.trim().strip_prefix("cargo run --release -- ") {
            commands.push(args.split_whitespace().map(String::from).collect());
        }
        pending.clear();
    }
    commands
}

fn run(args: &[String]) -> (String, String) {
    let out = Command::new(bindery_bin())
        .args(args)
        .current_dir(workspace_root())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "bindery {args:?} failed:\n{stderr}");
    (stdout, stderr)
}

/// `replay ... --dashboard --speed 1` at speed 100 on a free port: the page and
/// `/metrics` are served, the replay finishes, SIGTERM stops it.
fn dashboard_replay(args: &[String]) {
    let mut args = args.to_vec();
    let speed = args.iter().position(|a| a == "--speed").expect("--speed") + 1;
    args[speed] = "100".into();
    args.extend(["--listen".into(), "127.0.0.1:0".into()]);
    let mut child = Command::new(bindery_bin())
        .args(&args)
        .current_dir(workspace_root())
        .env("BINDERY_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut url = None;
    let start = Instant::now();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("dashboard=").nth(1) {
            url = rest.split('/').take(3).collect::<Vec<_>>().join("/").into();
        }
        if line.contains("replay finished") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the replay never finished"
        );
    }
    let url = url.expect("the dashboard's address is logged");
    let (code, page) = http_get(&format!("{url}/dashboard")).unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("Bindery"));
    let (_, snapshot) = http_get(&format!("{url}/dashboard/snapshot")).unwrap();
    let snapshot: Value = serde_json::from_str(&snapshot).unwrap();
    assert_eq!(snapshot["done"], true);
    assert_eq!(
        snapshot["totals"]["events"], 810,
        "every event of examples/churn.jsonl"
    );
    // A page still connected (an open event stream) must not hold up the shutdown.
    let mut page = Command::new("curl")
        .args(["-sN", &format!("{url}/dashboard/events")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let stopped = terminate(
        &mut child,
        "bindery, with a page connected,",
        Duration::from_secs(20),
    );
    let _ = page.kill();
    let status = stopped.unwrap();
    assert!(status.success());
    let _ = page.kill();
    let _ = page.wait();
}

#[test]
fn the_readme_commands_do_what_it_says() {
    let commands = readme_commands();
    let find = |what: &str| -> Vec<String> {
        commands
            .iter()
            .find(|c| c.join(" ").contains(what))
            .unwrap_or_else(|| panic!("the README has no `{what}` command: {commands:?}"))
            .clone()
    };

    // Quick start: the nginx example's Bindings, as examples/nginx.bindings.json has them.
    let (stdout, _) = run(&find("replay examples/nginx.jsonl --dump-bindings -"));
    let expected = std::fs::read_to_string(workspace_root().join("examples/nginx.bindings.json"));
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap();
    assert_eq!(parse(&stdout), parse(&expected.unwrap()));

    // History: cluster3 joined because it was relabelled; the README shows the answer.
    let (stdout, _) = run(&find("history --log examples/nginx.jsonl"));
    assert!(stdout.contains("location-group: core → edge"), "{stdout}");
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    assert!(
        readme.contains(&stdout),
        "the README shows the history's answer as it is:\n{stdout}"
    );

    // The walk-through: the namespace's relabel alone took cart off the edge WECs; the
    // README shows the answer; before it, cart was in retail's Binding, and explain at
    // that time shows the selector matching.
    let (stdout, _) = run(&find("history --log examples/namespace-relabel.jsonl"));
    assert!(
        stdout.contains("retail  - workload apps/deployments/shop/cart\n    line 17  MODIFIED namespaces shop  team: retail → platform"),
        "{stdout}"
    );
    assert!(
        readme.contains(&stdout),
        "the README shows the history's answer as it is:\n{stdout}"
    );
    let (stdout, _) = run(&find("replay examples/namespace-relabel.jsonl --until"));
    let bindings = parse(&stdout);
    let retail = bindings["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["metadata"]["name"] == "retail")
        .unwrap_or_else(|| panic!("{stdout}"));
    let names: Vec<&str> = retail["spec"]["workload"]["namespaceScope"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cart", "checkout"]);
    let (stdout, _) = run(&find("explain --log examples/namespace-relabel.jsonl --at"));
    assert!(
        stdout.contains("✓ matchLabels team=retail: the Namespace shop has team=retail"),
        "{stdout}"
    );

    // Explain: the Deployment goes to cluster3, which joined the edge group.
    let (stdout, _) = run(&find("explain --log examples/nginx.jsonl"));
    assert!(stdout.contains("cluster3"), "{stdout}");
    let mut json = find("explain --log examples/nginx.jsonl");
    json.extend(["-o".into(), "json".into()]);
    let explanation = parse(&run(&json).0);
    assert_eq!(explanation["cluster"]["destination"], true);
    assert_eq!(explanation["object"]["selected"], true);

    // Dry-run of the edited policy: only cluster1.
    let (stdout, stderr) = run(&find("dry-run --log examples/nginx.jsonl"));
    let binding = parse(&stdout);
    assert_eq!(
        binding["spec"]["destinations"],
        serde_json::json!([{"clusterId": "cluster1"}])
    );
    assert!(stderr.contains("no problems"), "{stderr}");

    dashboard_replay(&find("--dashboard"));
}
