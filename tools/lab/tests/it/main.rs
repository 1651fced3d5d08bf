//! mimi-lab as a person runs it, as a process: every shipped scenario in its short form
//! passes; a scenario whose provider breaks a rule on purpose fails the check that rule is
//! for, naming it; bad scenario files are refused with the problem named; and the live view,
//! loaded in a real headless Chromium against a running federation, shows the room, its
//! members by provider and the nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_mimi-lab");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A temporary directory removed when dropped (also when the test fails).
struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "mimi-lab-test-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

fn lab(args: &[&str]) -> Ran {
    let out = Command::new(EXE)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

/// Runs a shipped scenario short; it must pass and leave a full report, and no work files.
fn shipped(name: &str, extra: &[&str]) {
    let t = Tmp::new(name);
    let out = t.0.join("report");
    let scenario = format!("scenarios/{name}.toml");
    let mut args = vec![
        "run",
        scenario.as_str(),
        "--short",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let r = lab(&args);
    assert_eq!(
        r.code, 0,
        "{name}: exit {}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    );
    assert!(r.stdout.contains("every check passed"), "{}", r.stdout);
    let s = summary(&out);
    assert_eq!(s["checks"]["passed"], true, "{s}");
    assert!(s["messages"]["accepted"].as_u64().unwrap() > 0, "{s}");
    assert!(s["messages"]["deliveries"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["step_errors"].as_array().unwrap().len(), 0, "{s}");
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("id=\"verdict\""), "no verdict");
    assert!(
        page.matches("<svg").count() >= 5,
        "the report has fewer than 5 plots"
    );
    let events = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    assert!(
        first["t_ms"].is_number() && first["event"].is_string(),
        "{first}"
    );
    assert!(
        !out.join("work").exists(),
        "the work directory was left behind"
    );
}

#[test]
fn scenario_draft_flow() {
    shipped("draft-flow", &[]);
}

#[test]
fn attachments_in_the_traffic_are_downloaded_and_checked() {
    let t = Tmp::new("attach");
    let sc = t.0.join("attach.toml");
    std::fs::write(
        &sc,
        r#"
name = "attachments"
seed = 5
duration_s = 6

[[provider]]
domain = "a.example"
users = 1

[[provider]]
domain = "b.example"
users = 1

[[provider]]
domain = "c.example"
users = 1

[[room]]
name = "files"
owner = "a1"

[[traffic]]
room = "files"
from_s = 1
until_s = 5
rate = 3
mix = { text = 1, attachment = 3 }
"#,
    )
    .unwrap();
    let out = t.0.join("report");
    let r = lab(&["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let s = summary(&out);
    assert!(s["attachments"]["downloaded"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["attachments"]["download_failed"], 0, "{s}");
    assert_eq!(s["checks"]["passed"], true, "{s}");
}

#[test]
fn scenario_hub_crash() {
    let t = Tmp::new("hc");
    let out = t.0.join("report");
    let r = lab(&[
        "run",
        "scenarios/hub-crash.toml",
        "--short",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let s = summary(&out);
    // The crash is in the report: a fault band for the killed hub, and messages refused
    // while it was down.
    let faults = s["faults"].as_array().unwrap();
    assert!(
        faults.iter().any(|f| f["fault"] == "a.example killed"),
        "{s}"
    );
    assert!(s["messages"]["failed"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["checks"]["passed"], true, "{s}");
}

#[test]
fn scenario_partition_heal() {
    shipped("partition-heal", &[]);
}

#[test]
fn scenario_flaky_network() {
    let t = Tmp::new("flaky");
    let out = t.0.join("report");
    let r = lab(&[
        "run",
        "scenarios/flaky-network.toml",
        "--short",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let s = summary(&out);
    // The relay did drop and duplicate datagrams.
    let dropped: u64 = s["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["stats"]["dropped"].as_u64().unwrap())
        .sum();
    assert!(dropped > 0, "{s}");
    assert_eq!(s["checks"]["passed"], true, "{s}");
}

#[test]
fn scenario_big_room_churn() {
    shipped("big-room-churn", &[]);
}

#[test]
fn scenario_follower_offline() {
    shipped("follower-offline", &[]);
}

#[test]
fn scenario_storage_faults() {
    let t = Tmp::new("storage");
    let out = t.0.join("report");
    let r = lab(&[
        "run",
        "scenarios/storage-faults.toml",
        "--short",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let s = summary(&out);
    let faults = s["faults"].as_array().unwrap();
    assert!(
        faults
            .iter()
            .any(|f| f["fault"].as_str().unwrap_or("").contains("disk")),
        "{s}"
    );
    assert!(
        faults
            .iter()
            .any(|f| f["fault"].as_str().unwrap_or("").contains("clock")),
        "{s}"
    );
    assert_eq!(s["checks"]["passed"], true, "{s}");
    assert_eq!(s["step_errors"].as_array().unwrap().len(), 0, "{s}");
}

#[test]
fn scenario_two_processes_pg() {
    let Some(url) = std::env::var("MIMI_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        eprintln!(
            "note: MIMI_TEST_POSTGRES_URL not set; two-processes-pg not run (scripts/test.sh sets it)"
        );
        return;
    };
    shipped("two-processes-pg", &["--postgres", &url]);
}

#[test]
fn a_broken_rule_fails_its_check_and_names_it() {
    let t = Tmp::new("broken");
    let sc = t.0.join("broken.toml");
    std::fs::write(
        &sc,
        r#"
name = "a follower that keeps removed members"
duration_s = 8
settle_s = 20
[[provider]]
domain = "a.example"
users = 1
[[provider]]
domain = "b.example"
users = 2
faults = { follower_keeps_removed_members = true }
[[room]]
name = "r"
owner = "a1"
[[traffic]]
room = "r"
from_s = 3
until_s = 7
rate = 5
senders = ["a1"]
[[at]]
t_s = 1
do = "remove"
room = "r"
users = ["b2"]
"#,
    )
    .unwrap();
    let out = t.0.join("report");
    let r = lab(&["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("[after-removal]"), "{}", r.stdout);
    assert!(
        r.stdout.contains("mimi://b.example/d/b2/d1"),
        "{}",
        r.stdout
    );
    let s = summary(&out);
    assert_eq!(s["checks"]["passed"], false);
    // The failed run left its nodes' logs for a person to read.
    assert!(
        out.join("logs/b.example.log").exists(),
        "no node logs in the report"
    );
}

#[test]
fn bad_scenarios_are_refused_with_the_problem_named() {
    let t = Tmp::new("bad");
    let base = "name = \"x\"\nduration_s = 5\n[[provider]]\ndomain = \"a.example\"\nusers = 1\n[[room]]\nname = \"r\"\nowner = \"a1\"\n";
    let cases = [
        ("", "no such file", "missing.toml"),
        ("colour = 1\n", "unknown field `colour`", "x"),
        (
            "[[at]]\nt_s = 1\ndo = \"kill\"\nnode = \"z.example\"\n",
            "no provider z.example",
            "x",
        ),
        (
            "[[at]]\nt_s = 1\ndo = \"explode\"\n",
            "unknown variant `explode`",
            "x",
        ),
        (
            "[[traffic]]\nroom = \"nope\"\nuntil_s = 2\nrate = 1\n",
            "no room \"nope\"",
            "x",
        ),
        (
            "[[provider]]\ndomain = \"b.example\"\n[[at]]\nt_s = 1\ndo = \"link\"\nbetween = [\"a.example\", \"b.example\"]\nloss = 2.0\n",
            "loss = 2: a probability",
            "x",
        ),
        (
            "[[at]]\nt_s = 9\ndo = \"checkpoint\"\nname = \"late\"\n",
            "within the timeline",
            "x",
        ),
    ];
    for (i, (extra, want, file)) in cases.iter().enumerate() {
        let path = if *file == "x" {
            let p = t.0.join(format!("bad{i}.toml"));
            // The extra text goes before the tables when it is a top-level key.
            let text = if extra.starts_with('[') {
                format!("{base}{extra}")
            } else {
                format!("{extra}{base}")
            };
            std::fs::write(&p, text).unwrap();
            p
        } else {
            t.0.join(file)
        };
        let r = lab(&[
            "run",
            path.to_str().unwrap(),
            "--out",
            t.0.join("o").to_str().unwrap(),
        ]);
        assert_eq!(r.code, 2, "case {i}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.to_lowercase().contains(&want.to_lowercase()),
            "case {i}: want {want:?} in {}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    let r = lab(&["view", "--node", "a.example"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("DOMAIN=HOST:PORT"), "{}", r.stderr);
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| {
            let out = Command::new("which").arg(b).output().ok()?;
            out.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
}

#[test]
fn live_view_in_a_headless_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("MIMI_REQUIRE_CHROMIUM").is_err(),
            "MIMI_REQUIRE_CHROMIUM is set but no chromium is installed"
        );
        eprintln!("note: no chromium; the view test did not run (apt-get install chromium)");
        return;
    };
    let t = Tmp::new("view");
    let out = t.0.join("report");
    let mut child = Command::new(EXE)
        .args([
            "run",
            "scenarios/draft-flow.toml",
            "--short",
            "--view",
            "127.0.0.1:0",
        ])
        .arg("--out")
        .arg(&out)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut url = None;
    // Bounded: the lab prints a few lines per second at most, and stops.
    for line in lines.by_ref().take(200) {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("mimi-lab: live view: ") {
            url = Some(u.trim().to_owned());
        }
        if line.contains("timeline of") {
            break;
        }
    }
    let url = url.expect("the lab did not print the view's address");
    let shot = t.0.join("view.png");
    let dom = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1200,1600",
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", t.0.join("chrome").display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let _ = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,1600",
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", t.0.join("chrome2").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output();
    // The screenshot goes into the test's output (target/lab-view.png) for a person to see.
    if shot.exists() {
        let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lab-view.png");
        let _ = std::fs::copy(&shot, &keep);
        eprintln!("screenshot of the view: {}", keep.display());
    }
    for n in ["a.example", "b.example", "c.example"] {
        assert!(
            dom.contains(&format!("data-node=\"{n}\"")),
            "node {n} missing:\n{dom}"
        );
    }
    assert!(
        dom.contains("data-room=\"mimi://a.example/r/clubhouse\""),
        "room missing:\n{dom}"
    );
    for p in ["a.example", "b.example", "c.example"] {
        assert!(
            dom.contains(&format!("data-provider=\"{p}\"")),
            "members of {p} missing:\n{dom}"
        );
    }
    assert!(
        dom.contains("alice@a.example") || dom.contains("alice"),
        "{dom}"
    );
    // What the nodes report (their admin `/events/recent`) is in the page too.
    let at_nodes = dom.split("id=\"node-events\"").nth(1).unwrap_or("");
    let at_nodes = at_nodes.split("</table>").next().unwrap_or("");
    assert!(
        at_nodes.contains("<td>a.example</td>"),
        "no events from the hub in the view:\n{dom}"
    );
    // The lab finishes on its own, and passes.
    for l in lines.by_ref().take(10_000) {
        let _ = l;
    }
    let st = child.wait().unwrap();
    assert!(st.success(), "the scenario under the view failed: {st}");
}
