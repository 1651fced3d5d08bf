//! The report directory: `events.jsonl` (every record), `summary.json` (figures and check
//! results), and `report.html`, one self-contained page with the plots (SVG drawn with
//! plotters): latency over time with the faults marked, the latency distribution, delivery
//! per provider, outbox depth over time, epochs over time.

use crate::agents::Agent;
use crate::checks::Failure;
use crate::log::{Event, Record};
use crate::relay::LinkStats;
use crate::scenario::{Action, Scenario};
use anyhow::{Context, Result};
use plotters::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::Path;

/// A fault over time: label, from, until (seconds).
struct Band {
    label: String,
    from: f64,
    until: f64,
}

fn bands(log: &[Record], end_s: f64) -> Vec<Band> {
    let mut open: HashMap<String, (String, f64)> = HashMap::new();
    let mut out = Vec::new();
    let close =
        |open: &mut HashMap<String, (String, f64)>, out: &mut Vec<Band>, key: &str, t: f64| {
            if let Some((label, from)) = open.remove(key) {
                out.push(Band {
                    label,
                    from,
                    until: t,
                });
            }
        };
    for r in log {
        let t = r.t_ms / 1000.0;
        let Event::Step {
            action,
            error: None,
        } = &r.event
        else {
            continue;
        };
        match action {
            Action::Kill { node } => {
                open.insert(format!("down {node}"), (format!("{node} killed"), t));
            }
            Action::Restart { node } => close(&mut open, &mut out, &format!("down {node}"), t),
            Action::Stop { node } => {
                open.insert(format!("stop {node}"), (format!("{node} stopped"), t));
            }
            Action::Continue { node } => close(&mut open, &mut out, &format!("stop {node}"), t),
            Action::DiskFull { node } => {
                open.insert(format!("disk {node}"), (format!("{node} disk full"), t));
            }
            Action::DiskOk { node } => close(&mut open, &mut out, &format!("disk {node}"), t),
            Action::ClockSkew { node, offset_ms } => {
                let k = format!("clock {node}");
                close(&mut open, &mut out, &k, t);
                if *offset_ms != 0 {
                    open.insert(k, (format!("{node} clock {offset_ms:+} ms"), t));
                }
            }
            Action::Partition { between } => {
                let k = format!("link {}-{}", between[0], between[1]);
                open.insert(k, (format!("partition {}/{}", between[0], between[1]), t));
            }
            Action::Link {
                between,
                loss,
                jitter_ms,
                ..
            } => {
                let k = format!("link {}-{}", between[0], between[1]);
                close(&mut open, &mut out, &k, t);
                open.insert(
                    k,
                    (
                        format!(
                            "{}/{} loss {:.0}% jitter {jitter_ms} ms",
                            between[0],
                            between[1],
                            loss * 100.0
                        ),
                        t,
                    ),
                );
            }
            Action::Heal { between } => {
                let keys: Vec<String> = match between {
                    Some(b) => vec![
                        format!("link {}-{}", b[0], b[1]),
                        format!("link {}-{}", b[1], b[0]),
                    ],
                    None => open
                        .keys()
                        .filter(|k| k.starts_with("link "))
                        .cloned()
                        .collect(),
                };
                for k in keys {
                    close(&mut open, &mut out, &k, t);
                }
            }
            _ => {}
        }
    }
    for (_, (label, from)) in open {
        out.push(Band {
            label,
            from,
            until: end_s,
        });
    }
    out.sort_by(|a, b| a.from.total_cmp(&b.from));
    out
}

/// Per-message latencies: (submitted at s, latency ms, receiving device).
fn latencies(log: &[Record]) -> Vec<(f64, f64, usize)> {
    let mut sent: HashMap<&str, f64> = HashMap::new();
    for r in log {
        if let Event::Sent {
            id, submitted_ms, ..
        } = &r.event
        {
            sent.insert(id.as_str(), *submitted_ms);
        }
    }
    let mut v = Vec::new();
    for r in log {
        if let Event::Delivered { id, device, .. } = &r.event
            && let Some(s) = sent.get(id.as_str())
        {
            v.push((s / 1000.0, (r.t_ms - s).max(0.0), *device));
        }
    }
    v
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

const BAND_COLORS: [RGBColor; 4] = [
    RGBColor(255, 200, 200),
    RGBColor(255, 230, 170),
    RGBColor(200, 220, 255),
    RGBColor(220, 200, 255),
];

fn svg(draw: impl FnOnce(&mut String) -> Result<(), String>) -> String {
    let mut s = String::new();
    match draw(&mut s) {
        Ok(()) => s,
        Err(e) => format!("<p>plot failed: {}</p>", html(&e)),
    }
}

fn plot_latency(lat: &[(f64, f64, usize)], bands: &[Band], end_s: f64) -> String {
    svg(|out| {
        let root = SVGBackend::with_string(out, (900, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let ymax = lat.iter().map(|l| l.1).fold(10.0, f64::max) * 1.05;
        let mut c = ChartBuilder::on(&root)
            .caption(
                "latency per delivery (submit → delivered), faults shaded",
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..end_s.max(1.0), 0f64..ymax)
            .map_err(|e| e.to_string())?;
        c.configure_mesh()
            .x_desc("time (s)")
            .y_desc("latency (ms)")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, b) in bands.iter().enumerate() {
            let col = BAND_COLORS[i % BAND_COLORS.len()];
            c.draw_series(std::iter::once(Rectangle::new(
                [(b.from, 0.0), (b.until.max(b.from + 0.05), ymax)],
                col.mix(0.6).filled(),
            )))
            .map_err(|e| e.to_string())?
            .label(b.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], col.filled()));
        }
        c.draw_series(
            lat.iter()
                .map(|(t, l, _)| Circle::new((*t, *l), 2, BLUE.mix(0.5).filled())),
        )
        .map_err(|e| e.to_string())?;
        if !bands.is_empty() {
            c.configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn plot_histogram(lat: &[(f64, f64, usize)]) -> String {
    svg(|out| {
        let root = SVGBackend::with_string(out, (440, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        // Buckets of a tenth of the 99th percentile (the tail beyond lands in the last one).
        let mut v: Vec<f64> = lat.iter().map(|l| l.1).collect();
        v.sort_by(f64::total_cmp);
        let top = percentile(&v, 0.99).max(1.0);
        let width = top / 20.0;
        let mut counts = [0u32; 21];
        for x in &v {
            counts[((x / width) as usize).min(20)] += 1;
        }
        let ymax = counts.iter().copied().max().unwrap_or(1).max(1);
        let mut c = ChartBuilder::on(&root)
            .caption("latency distribution", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..width * 21.0, 0u32..ymax + ymax / 10 + 1)
            .map_err(|e| e.to_string())?;
        c.configure_mesh()
            .x_desc("latency (ms)")
            .y_desc("deliveries")
            .draw()
            .map_err(|e| e.to_string())?;
        c.draw_series(counts.iter().enumerate().map(|(i, n)| {
            let x0 = i as f64 * width;
            Rectangle::new([(x0, 0), (x0 + width * 0.9, *n)], BLUE.mix(0.6).filled())
        }))
        .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn plot_bars(title: &str, rows: &[(String, f64, f64)]) -> String {
    svg(|out| {
        let root = SVGBackend::with_string(out, (440, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let ymax = rows.iter().map(|r| r.1.max(r.2)).fold(1.0, f64::max) * 1.1;
        let n = rows.len().max(1);
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..n as f64, 0f64..ymax)
            .map_err(|e| e.to_string())?;
        let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        c.configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| {
                let i = (*x - 0.5).round();
                if (x - 0.5 - i).abs() < 0.01 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("messages")
            .draw()
            .map_err(|e| e.to_string())?;
        c.draw_series(rows.iter().enumerate().map(|(i, r)| {
            Rectangle::new(
                [(i as f64 + 0.1, 0.0), (i as f64 + 0.45, r.1)],
                RGBColor(180, 180, 180).filled(),
            )
        }))
        .map_err(|e| e.to_string())?
        .label("expected")
        .legend(|(x, y)| {
            Rectangle::new(
                [(x, y - 5), (x + 15, y + 5)],
                RGBColor(180, 180, 180).filled(),
            )
        });
        c.draw_series(rows.iter().enumerate().map(|(i, r)| {
            Rectangle::new(
                [(i as f64 + 0.5, 0.0), (i as f64 + 0.85, r.2)],
                GREEN.mix(0.7).filled(),
            )
        }))
        .map_err(|e| e.to_string())?
        .label("delivered")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], GREEN.mix(0.7).filled()));
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn plot_lines(
    title: &str,
    ydesc: &str,
    series: &BTreeMap<String, Vec<(f64, f64)>>,
    end_s: f64,
    bands: &[Band],
) -> String {
    svg(|out| {
        let root = SVGBackend::with_string(out, (900, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let ymax = series
            .values()
            .flat_map(|v| v.iter().map(|p| p.1))
            .fold(1.0, f64::max)
            * 1.1;
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..end_s.max(1.0), 0f64..ymax)
            .map_err(|e| e.to_string())?;
        c.configure_mesh()
            .x_desc("time (s)")
            .y_desc(ydesc)
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, b) in bands.iter().enumerate() {
            let col = BAND_COLORS[i % BAND_COLORS.len()];
            c.draw_series(std::iter::once(Rectangle::new(
                [(b.from, 0.0), (b.until.max(b.from + 0.05), ymax)],
                col.mix(0.5).filled(),
            )))
            .map_err(|e| e.to_string())?;
        }
        for (i, (name, pts)) in series.iter().enumerate() {
            let col = Palette99::pick(i).to_rgba();
            c.draw_series(LineSeries::new(pts.iter().copied(), col.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 15, y)], col.stroke_width(2))
                });
        }
        if !series.is_empty() {
            c.configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes the report directory; the summary.
pub fn write(
    out: &Path,
    sc: &Scenario,
    log: &[Record],
    failures: &[Failure],
    agents: &[Agent],
    links: &[((String, String), LinkStats)],
) -> Result<serde_json::Value> {
    std::fs::create_dir_all(out)?;
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(out.join("events.jsonl")).context("writing events.jsonl")?,
    );
    for r in log {
        serde_json::to_writer(&mut f, r)?;
        f.write_all(b"\n")?;
    }
    f.flush()?;
    let end_s = log
        .iter()
        .map(|r| r.t_ms / 1000.0)
        .fold(sc.duration_s, f64::max);
    let lat = latencies(log);
    let mut lv: Vec<f64> = lat.iter().map(|l| l.1).collect();
    lv.sort_by(f64::total_cmp);
    let bands = bands(log, end_s);
    let (mut sent, mut failed, mut skipped, mut delivered, mut repeated) = (0, 0, 0, 0, 0);
    let mut fail_reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut downloads = (0u64, 0u64);
    for r in log {
        match &r.event {
            Event::Sent { .. } => sent += 1,
            Event::SendFailed { reason, .. } => {
                failed += 1;
                let key: String = reason.chars().take(80).collect();
                *fail_reasons.entry(key).or_default() += 1;
            }
            Event::SendSkipped { .. } => skipped += 1,
            Event::Delivered { .. } => delivered += 1,
            Event::Repeated { .. } => repeated += 1,
            Event::Downloaded { .. } => downloads.0 += 1,
            Event::DownloadFailed { .. } => downloads.1 += 1,
            _ => {}
        }
    }
    // Delivery per provider: expected (members at the message's epoch) and delivered.
    let devices: Vec<usize> = (0..agents.len()).collect();
    let missing = crate::checks::missing(log, &devices);
    let mut per: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for r in log {
        if let Event::Delivered { device, .. } = &r.event
            && let Some(a) = agents.get(*device)
        {
            per.entry(a.domain.clone()).or_default().1 += 1.0;
        }
    }
    for (k, v) in per.iter_mut() {
        let miss = missing
            .iter()
            .filter(|m| agents.get(m.2).is_some_and(|a| a.domain == *k))
            .count();
        v.0 = v.1 + miss as f64;
    }
    let per_rows: Vec<(String, f64, f64)> =
        per.iter().map(|(k, v)| (k.clone(), v.0, v.1)).collect();
    // Outbox depth and epochs over time.
    let mut depth: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut epochs: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut commits: BTreeMap<String, std::collections::BTreeSet<u64>> = BTreeMap::new();
    for r in log {
        let t = r.t_ms / 1000.0;
        match &r.event {
            Event::Sample {
                node, outbox_depth, ..
            } if t >= 0.0 => depth
                .entry(node.clone())
                .or_default()
                .push((t, *outbox_depth)),
            Event::Commit { room, epoch, .. } if t >= 0.0 => {
                let name = room.rsplit('/').next().unwrap_or(room).to_owned();
                let e = epochs.entry(name).or_default();
                if e.last().is_none_or(|l| (*epoch as f64) > l.1) {
                    e.push((t, *epoch as f64));
                }
                commits.entry(room.clone()).or_default().insert(*epoch);
            }
            _ => {}
        }
    }
    let checkpoints: Vec<serde_json::Value> = log
        .iter()
        .filter_map(|r| match &r.event {
            Event::Checkpoint { name, ok, failures } => Some(serde_json::json!({
                "name": name, "t_s": r.t_ms / 1000.0, "ok": ok, "failures": failures })),
            _ => None,
        })
        .collect();
    let step_errors: Vec<serde_json::Value> = log
        .iter()
        .filter_map(|r| match &r.event {
            Event::Step {
                action,
                error: Some(e),
            } => Some(serde_json::json!({
                "t_s": r.t_ms / 1000.0, "action": action, "error": e })),
            _ => None,
        })
        .collect();
    let summary = serde_json::json!({
        "scenario": sc.name,
        "description": sc.description,
        "seed": sc.seed,
        "duration_s": sc.duration_s,
        "providers": sc.providers.iter().map(|p| serde_json::json!({
            "domain": p.domain, "database": p.database, "processes": p.processes })).collect::<Vec<_>>(),
        "devices": agents.len(),
        "messages": { "accepted": sent, "failed": failed, "skipped_busy": skipped,
                      "deliveries": delivered, "repeated": repeated,
                      "failed_reasons": fail_reasons },
        "attachments": { "downloaded": downloads.0, "download_failed": downloads.1 },
        "latency_ms": { "count": lv.len(), "p50": percentile(&lv, 0.5), "p90": percentile(&lv, 0.9),
                        "p99": percentile(&lv, 0.99), "max": lv.last().copied().unwrap_or(0.0) },
        "delivery_per_provider": per.iter().map(|(k, v)| (k.clone(), serde_json::json!({
            "expected": v.0, "delivered": v.1 }))).collect::<serde_json::Map<_, _>>(),
        "epochs": commits.iter().map(|(k, v)| (k.clone(), serde_json::json!(v.iter().max()))).collect::<serde_json::Map<_, _>>(),
        "faults": bands.iter().map(|b| serde_json::json!({ "fault": b.label, "from_s": b.from, "until_s": b.until })).collect::<Vec<_>>(),
        "links": links.iter().map(|((a, b), s)| serde_json::json!({ "between": [a, b], "stats": s })).collect::<Vec<_>>(),
        "step_errors": step_errors,
        "checkpoints": checkpoints,
        "checks": { "passed": failures.is_empty(), "failures": failures },
    });
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    // The page.
    let mut page = String::new();
    page.push_str(&format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mimi-lab: {}</title><style>\
         body{{font-family:sans-serif;margin:2em;max-width:960px}} table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}} .ok{{color:#070}} .bad{{color:#b00}}\
         svg{{display:block;margin:1em 0}} .row{{display:flex;gap:1em;flex-wrap:wrap}}</style></head><body>",
        html(&sc.name)
    ));
    page.push_str(&format!(
        "<h1>{}</h1><p>{}</p>",
        html(&sc.name),
        html(&sc.description)
    ));
    let verdict = if failures.is_empty() {
        "<p class=\"ok\" id=\"verdict\"><b>every check passed</b></p>".to_owned()
    } else {
        format!(
            "<p class=\"bad\" id=\"verdict\"><b>{} check(s) failed</b></p>",
            failures.len()
        )
    };
    page.push_str(&verdict);
    page.push_str(&format!(
        "<table><tr><th>providers</th><td>{}</td></tr><tr><th>devices</th><td>{}</td></tr>\
         <tr><th>messages accepted</th><td>{sent}</td></tr><tr><th>not accepted</th><td>{failed}</td></tr>\
         <tr><th>deliveries</th><td>{delivered}</td></tr>\
         <tr><th>latency p50 / p90 / p99 / max</th><td>{:.1} / {:.1} / {:.1} / {:.1} ms</td></tr></table>",
        html(&sc.providers.iter().map(|p| format!("{} ({}, {} process(es))", p.domain, p.database, p.processes)).collect::<Vec<_>>().join(", ")),
        agents.len(),
        percentile(&lv, 0.5),
        percentile(&lv, 0.9),
        percentile(&lv, 0.99),
        lv.last().copied().unwrap_or(0.0)
    ));
    if !failures.is_empty() {
        page.push_str(
            "<h2>Failed checks</h2><table><tr><th>check</th><th>room</th><th>what</th></tr>",
        );
        for f in failures.iter().take(200) {
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                html(&f.check),
                html(&f.room),
                html(&f.what)
            ));
        }
        page.push_str("</table>");
    }
    page.push_str("<h2>Latency</h2>");
    page.push_str(&plot_latency(&lat, &bands, end_s));
    page.push_str("<div class=\"row\">");
    page.push_str(&plot_histogram(&lat));
    page.push_str(&plot_bars("delivery per provider", &per_rows));
    page.push_str("</div><h2>Outbox depth</h2>");
    page.push_str(&plot_lines(
        "hub outbox depth per node",
        "messages waiting",
        &depth,
        end_s,
        &bands,
    ));
    page.push_str("<h2>Epochs</h2>");
    page.push_str(&plot_lines(
        "epoch per room",
        "epoch",
        &epochs,
        end_s,
        &bands,
    ));
    page.push_str(
        "<h2>Faults and steps</h2><table><tr><th>t (s)</th><th>step</th><th>result</th></tr>",
    );
    for r in log {
        if let Event::Step { action, error } = &r.event {
            page.push_str(&format!(
                "<tr><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
                r.t_ms / 1000.0,
                html(&serde_json::to_string(action).unwrap_or_default()),
                error.as_deref().map_or("ok".to_owned(), html)
            ));
        }
        if let Event::Checkpoint { name, ok, .. } = &r.event {
            page.push_str(&format!(
                "<tr><td>{:.1}</td><td>checkpoint {}</td><td>{}</td></tr>",
                r.t_ms / 1000.0,
                html(name),
                if *ok { "converged" } else { "failed" }
            ));
        }
    }
    page.push_str("</table><p>Every record is in <code>events.jsonl</code>; the figures in <code>summary.json</code>.</p></body></html>\n");
    std::fs::write(out.join("report.html"), page)?;
    Ok(summary)
}
