//! The dashboard in a real headless Chromium (Debian's `chromium`, driven through
//! `chromedriver` with WebDriver), during a paced replay: the page updates live, and
//! once the replay is done the figures it shows are exactly those of `/metrics`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bindery_tests::control_plane::res;
use bindery_tests::objects::{as_stored, configmap, edge, labelled, managed_cluster, policy};
use bindery_tests::objects::{entry, spec};
use bindery_tests::watch_log::{self, CONFIGMAPS, POLICIES, WECS, event};
use bindery_tests::world::{SETTLE, World, fail};
use bindery_tests::{bindery_bin, free_listen_address, free_port, http_get, terminate};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A child process killed (SIGTERM, then SIGKILL) when dropped.
struct Process(Child, &'static str);

impl Process {
    /// SIGTERM and wait; true when it exited successfully.
    fn stop(&mut self) -> Result<bool> {
        Ok(terminate(&mut self.0, self.1, Duration::from_secs(20))?.success())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.stop();
        }
    }
}

/// Waits until something listens on `port`.
fn await_port(port: u16, what: &str) -> Result<()> {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "{what} does not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Writes a watch log to `dir`: 3 WECs, 3 policies and 30 ConfigMaps, then, 100 ms
/// apart in log time, 80 relabels moving ConfigMaps in and out of the policies'
/// selection. Returns its path and its number of events.
fn write_log(dir: &Path) -> (PathBuf, u64) {
    let mut events = Vec::new();
    let mut ts = 1_764_151_200_000_i64;
    for i in 0..3 {
        let wec = as_stored(
            managed_cluster(&format!("c{i}"), "edge"),
            &format!("uc{i}"),
            "1",
        );
        events.push(event(ts, WECS, "ADDED", Some(wec)));
    }
    events.push(event(ts, WECS, "SYNCED", None));
    for (i, tier) in ["gold", "silver", "bronze"].iter().enumerate() {
        let downsync = json!([labelled(&[], json!({"tier": tier}))]);
        let policy = policy(&format!("p-{tier}"), edge(), downsync);
        let mut policy = as_stored(policy, &format!("up{i}"), "1");
        policy["metadata"]["generation"] = json!(1);
        events.push(event(ts, POLICIES, "ADDED", Some(policy)));
    }
    events.push(event(ts, POLICIES, "SYNCED", None));
    let tiers = ["gold", "silver", "bronze", "none"];
    let configmap = |i: usize, rv: usize, tier: &str| {
        let cm = configmap("ns", &format!("cm{i}"), json!({"tier": tier}));
        Some(as_stored(cm, &format!("u{i}"), &rv.to_string()))
    };
    for i in 0..30 {
        events.push(event(
            ts,
            CONFIGMAPS,
            "ADDED",
            configmap(i, 1, tiers[i % 3]),
        ));
    }
    events.push(event(ts, CONFIGMAPS, "SYNCED", None));
    for step in 0..80 {
        ts += 100;
        let i = (step * 7) % 30;
        let cm = configmap(i, step + 2, tiers[(i + step) % 4]);
        events.push(event(ts, CONFIGMAPS, "MODIFIED", cm));
    }
    let path = watch_log::write(dir, "churn.jsonl", &events);
    (path, events.len() as u64)
}

/// `/metrics` parsed: `name{labels}` (as written) → value.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of the series of `name` whose labels contain every one of `labels`.
fn sum(metrics: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> u64 {
    metrics
        .iter()
        .filter(|(series, _)| {
            series.split('{').next() == Some(name) && labels.iter().all(|l| series.contains(l))
        })
        .map(|(_, v)| *v)
        .sum::<f64>() as u64
}

/// Per value of `label` (e.g. `policy="`), the sum of the series of `name`.
fn by_label(metrics: &BTreeMap<String, f64>, name: &str, label: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (series, v) in metrics {
        if series.split('{').next() != Some(name) {
            continue;
        }
        let Some(rest) = series.split(label).nth(1) else {
            continue;
        };
        let value = rest.split('"').next().unwrap_or_default().to_string();
        *out.entry(value).or_default() += *v as u64;
    }
    out
}

async fn body_attr(client: &Client, attr: &str) -> Result<String> {
    let v = client
        .execute(
            &format!("return document.body.dataset.{attr} || ''"),
            vec![],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

async fn figure(client: &Client, id: &str) -> Result<u64> {
    let text = client.find(Locator::Id(id)).await?.text().await?;
    text.trim()
        .parse()
        .with_context(|| format!("#{id} shows {text:?}, not an integer"))
}

/// The rows of a top table: (data-name, data-churn).
async fn table(client: &Client, id: &str) -> Result<Vec<(String, u64)>> {
    let rows = client
        .execute(
            &format!(
                "return Array.from(document.querySelectorAll('#{id} tr[data-name]'))
                   .map(r => [r.dataset.name, Number(r.dataset.churn)])"
            ),
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(rows)?)
}

/// Waits (polling the page) until `check` holds.
async fn page_until(
    client: &Client,
    what: &str,
    check: impl AsyncFn(&Client) -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if check(client).await? {
            return Ok(());
        }
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "the page never showed {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `bindery_*` metric names in `text`.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    text.split("bindery_")
        .skip(1)
        .map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            format!("bindery_{name}")
        })
        .filter(|name| name.len() > "bindery_".len())
        .collect()
}

/// The `bindery_*` metric names the Grafana dashboard's queries use, and those of the
/// README's alerts, each with the file it comes from.
fn documented_metric_names() -> Result<Vec<(&'static str, String)>> {
    let root = bindery_tests::workspace_root();
    let dashboard = "deploy/chart/bindery/dashboards/bindery.json";
    let grafana = metric_names(&std::fs::read_to_string(root.join(dashboard))?);
    ensure!(grafana.len() > 10, "{dashboard} queries bindery metrics");
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    let alerts = readme
        .split_once("### Alerts worth setting")
        .and_then(|(_, rest)| rest.split("\n#").next())
        .context("README.md has an alerts section")?;
    let alerts = metric_names(alerts);
    ensure!(alerts.len() >= 5, "the README's alerts use bindery metrics");
    Ok(grafana
        .into_iter()
        .map(|n| (dashboard, n))
        .chain(alerts.into_iter().map(|n| ("README.md (alerts)", n)))
        .collect())
}

/// `top` as the page computes it from per-name totals: largest first, ties by name, 10.
fn top10(totals: BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> = totals.into_iter().filter(|(_, n)| *n > 0).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(10);
    rows
}

/// A WebDriver session in headless Chromium, and its chromedriver.
async fn browser() -> Result<(Client, Process)> {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        ensure!(
            Path::new(tool).exists(),
            "{tool} is missing: install Debian's chromium and chromium-driver (.ci/run does)"
        );
    }
    let driver_port = free_port();
    let driver = Process(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?,
        "chromedriver",
    );
    await_port(driver_port, "chromedriver")?;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": CHROMIUM, "args": ["--headless", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--disable-background-networking", "--window-size=1400,1000"]}),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .context("a WebDriver session in headless Chromium")?;
    Ok((client, driver))
}

#[tokio::test]
async fn dashboard_figures_agree_with_metrics_during_a_replay() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (log, events) = write_log(dir.path());

    // The browser first, then the replay: the page must open while the replay runs.
    let bin = bindery_bin();
    let (client, _driver) = browser().await?;
    let port = free_port();
    let mut bindery = Process(
        Command::new(&bin)
            .args([
                "replay",
                log.to_str().unwrap(),
                "--dashboard",
                "--speed",
                "1",
            ])
            .args([
                "--per-policy-metrics",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("bindery.log"))?)
            .spawn()
            .context("starting bindery replay --dashboard")?,
        "bindery",
    );
    await_port(port, "bindery")?;
    let result = check_page(&client, port, events).await;
    let _ = client.close().await;
    result?;
    ensure!(
        bindery.stop()?,
        "bindery replay --dashboard exits cleanly on SIGTERM"
    );
    Ok(())
}

async fn check_page(client: &Client, port: u16, events: u64) -> Result<()> {
    client
        .goto(&format!("http://127.0.0.1:{port}/dashboard"))
        .await?;
    ensure!(
        client.title().await?.contains("Bindery"),
        "the dashboard's title names Bindery"
    );

    // Live: samples arrive while the replay runs (it takes ~8 s of paced log time).
    page_until(client, "a first sample", async |c| {
        Ok(body_attr(c, "samples").await?.parse::<u64>().unwrap_or(0) >= 1)
    })
    .await?;
    let early = figure(client, "total-events").await?;
    let early_samples: u64 = body_attr(client, "samples").await?.parse()?;
    page_until(client, "the replay finished", async |c| {
        Ok(body_attr(c, "done").await? == "true")
    })
    .await?;
    ensure!(
        body_attr(client, "mode").await? == "replay",
        "mode is replay"
    );
    let late_samples: u64 = body_attr(client, "samples").await?.parse()?;
    ensure!(
        late_samples >= early_samples + 2,
        "the page kept receiving samples during the replay ({early_samples} then {late_samples})"
    );
    ensure!(
        early < events,
        "the first sample came before the replay's end ({early} of {events} events)"
    );

    // Done: nothing changes any more; the page and /metrics must agree exactly.
    let text = client
        .execute("return fetch('/metrics').then(r => r.text())", vec![])
        .await?;
    let metrics = parse_metrics(text.as_str().context("/metrics is text")?);
    let expect = [
        (
            "total-events",
            sum(&metrics, "bindery_watch_events_total", &[]),
        ),
        (
            "total-binding-changes",
            sum(&metrics, "bindery_binding_changes_total", &[]),
        ),
        (
            "total-entries-added",
            sum(
                &metrics,
                "bindery_binding_entry_changes_total",
                &["change=\"added\""],
            ),
        ),
        (
            "total-entries-removed",
            sum(
                &metrics,
                "bindery_binding_entry_changes_total",
                &["change=\"removed\""],
            ),
        ),
        (
            "total-epochs",
            sum(&metrics, "bindery_engine_epochs_total", &[]),
        ),
        (
            "total-latency-count",
            sum(&metrics, "bindery_event_to_binding_seconds_count", &[]),
        ),
        (
            "total-sink-writes",
            sum(
                &metrics,
                "bindery_sink_writes_total",
                &["result=\"applied\""],
            ) + sum(
                &metrics,
                "bindery_sink_writes_total",
                &["result=\"deleted\""],
            ),
        ),
        (
            "total-sink-errors",
            sum(
                &metrics,
                "bindery_sink_writes_total",
                &["result=\"failed\""],
            ),
        ),
        ("size-wecs", sum(&metrics, "bindery_wecs", &[])),
        (
            "size-objects",
            sum(&metrics, "bindery_workload_objects", &[]),
        ),
        ("size-policies", sum(&metrics, "bindery_policies", &[])),
        ("size-bindings", sum(&metrics, "bindery_bindings", &[])),
        (
            "size-binding-entries",
            sum(&metrics, "bindery_binding_workload_entries", &[]),
        ),
        (
            "size-destinations",
            sum(&metrics, "bindery_binding_destinations", &[]),
        ),
        (
            "size-work-statuses",
            sum(&metrics, "bindery_work_statuses", &[]),
        ),
        (
            "size-returned-statuses",
            sum(&metrics, "bindery_returned_statuses", &[]),
        ),
        (
            "size-combined-statuses",
            sum(&metrics, "bindery_combined_statuses", &[]),
        ),
        (
            "size-invalid-collectors",
            sum(&metrics, "bindery_invalid_status_collectors", &[]),
        ),
    ];
    for (id, want) in expect {
        let shown = figure(client, id).await?;
        ensure!(shown == want, "#{id} shows {shown}, /metrics says {want}");
    }
    // Ground truth, so that agreeing on zero could not pass.
    ensure!(
        figure(client, "total-events").await? == events,
        "every event of the log is counted"
    );
    ensure!(figure(client, "size-objects").await? == 30, "30 ConfigMaps");
    ensure!(figure(client, "size-wecs").await? == 3, "3 WECs");
    ensure!(
        figure(client, "total-entries-removed").await? > 0,
        "relabels removed entries"
    );

    // The Grafana dashboard and the README's alerts ask only for series that exist.
    let text = text.as_str().unwrap_or_default();
    for (file, name) in documented_metric_names()? {
        let family = ["_total", "_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        ensure!(
            text.contains(&format!("# TYPE {family} ")),
            "{file} queries {name}, which /metrics does not expose"
        );
    }

    let policies = top10(by_label(
        &metrics,
        "bindery_policy_binding_entry_changes_total",
        "policy=\"",
    ));
    ensure!(policies.len() == 3, "three policies churned: {policies:?}");
    ensure!(
        table(client, "top-policies").await? == policies,
        "top policies agree with /metrics"
    );
    let resources = top10(by_label(
        &metrics,
        "bindery_watch_events_total",
        "resource=\"",
    ));
    ensure!(
        table(client, "top-resources").await? == resources,
        "top resources agree with /metrics"
    );
    Ok(())
}

/// The rows of the Binding changes table: (data-binding, data-change, data-cause, the
/// change's link).
async fn changes(client: &Client) -> Result<Vec<(String, String, String, String)>> {
    let rows = client
        .execute(
            "return Array.from(document.querySelectorAll('#changes tr[data-change]'))
               .map(r => [r.dataset.binding, r.dataset.change, r.dataset.cause,
                          r.cells[2].querySelector('a').getAttribute('href')])",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(rows)?)
}

/// Under `bindery run` (against envtest) the page lists the latest Binding changes with
/// their causes, newest first, each linked to its history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_lists_a_live_runs_changes_with_their_causes() -> Result<()> {
    let w = World::start().await;
    for (name, group) in [("c1", "edge"), ("c2", "core")] {
        w.wec(name, group).await;
    }
    w.namespace("web", json!({"team": "a"})).await;
    let front = w.deployment("web", "front", json!({"app": "web"})).await;
    let clause = json!({"resources": ["deployments"],
                        "namespaceSelectors": [{"matchLabels": {"team": "a"}}]});
    w.policy("web", edge(), json!([clause])).await;
    let (listen, base) = free_listen_address();
    let bindery = w.bindery_with("bindery.log", &["--listen", &listen, "--coalesce-ms", "50"]);
    let deployed = spec(vec![entry(&res::deployments(), &front)], &["c1"]);
    w.expect_spec(&bindery, "web", &deployed, "the first Binding", SETTLE)
        .await;

    let (client, _driver) = browser().await?;
    let result = async {
        client.goto(&format!("{base}/dashboard")).await?;
        page_until(&client, "mode run", async |c| {
            Ok(body_attr(c, "mode").await? == "run")
        })
        .await?;
        let note = client.find(Locator::Id("changes-note")).await?.text().await?;
        ensure!(note == "no change since the first publish", "{note}");
        // Two changes: c2 joins the edge group, then the namespace leaves team a.
        w.wec("c2", "edge").await;
        w.namespace("web", json!({"team": "b"})).await;
        page_until(&client, "both changes", async |c| Ok(changes(c).await?.len() >= 2)).await?;
        let rows = changes(&client).await?;
        let expected = [
            (
                "web".to_string(),
                "- workload apps/deployments/web/front".to_string(),
                "MODIFIED namespaces web · team: a → b".to_string(),
                "/history?binding=web&object=apps%2Fdeployments%2Fweb%2Ffront".to_string(),
            ),
            (
                "web".to_string(),
                "+ destination c2".to_string(),
                "MODIFIED cluster.open-cluster-management.io/managedclusters c2 · location-group: core → edge".to_string(),
                "/history?binding=web&cluster=c2".to_string(),
            ),
        ];
        ensure!(rows == expected, "the page lists {rows:#?}");
        // The link answers with that change.
        let (code, text) = http_get(&format!("{base}{}", expected[0].3))?;
        ensure!(code == 200, "{code} {text}");
        ensure!(text.contains("web  - workload apps/deployments/web/front\n"), "{text}");
        ensure!(!text.contains("destination"), "{text}");
        Ok(())
    }
    .await;
    let _ = client.close().await;
    result.map_err(|e: anyhow::Error| fail(&bindery, &format!("{e:#}")))
}
