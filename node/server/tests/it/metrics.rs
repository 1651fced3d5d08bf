use mimi_node::metrics::{MetricError, Registry};
use std::time::Duration;

#[test]
fn text_format_counters_gauges_histograms() {
    let r = Registry::new();
    let req = r
        .counter(
            "mimi_requests_total",
            "Requests by endpoint and status.",
            &["endpoint", "code"],
        )
        .unwrap();
    let depth = r
        .gauge(
            "mimi_outbox_depth",
            "FanoutMessages waiting per follower.",
            &["follower"],
        )
        .unwrap();
    let lat = r
        .histogram("mimi_request_seconds", "Request latency.", &["endpoint"])
        .unwrap();
    req.add(&["update", "200"], 2).unwrap();
    req.add(&["notify", "201"], 1).unwrap();
    depth.set(&["b.example"], 7).unwrap();
    depth.set(&["b.example"], -1).unwrap();
    lat.observe(&["update"], Duration::from_micros(700))
        .unwrap();
    lat.observe(&["update"], Duration::from_secs(30)).unwrap();
    let text = r.render();
    let expected_lines = [
        "# TYPE mimi_requests_total counter",
        "mimi_requests_total{endpoint=\"notify\",code=\"201\"} 1",
        "mimi_requests_total{endpoint=\"update\",code=\"200\"} 2",
        "# TYPE mimi_outbox_depth gauge",
        "mimi_outbox_depth{follower=\"b.example\"} -1",
        "mimi_request_seconds_bucket{endpoint=\"update\",le=\"0.0005\"} 0",
        "mimi_request_seconds_bucket{endpoint=\"update\",le=\"0.001\"} 1",
        "mimi_request_seconds_bucket{endpoint=\"update\",le=\"10\"} 1",
        "mimi_request_seconds_bucket{endpoint=\"update\",le=\"+Inf\"} 2",
        "mimi_request_seconds_count{endpoint=\"update\"} 2",
        "mimi_request_seconds_sum{endpoint=\"update\"} 30.0007",
    ];
    for line in expected_lines {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    // Stable: rendering twice gives the same bytes.
    assert_eq!(text, r.render());
}

#[test]
fn labels_are_escaped_and_misuse_is_an_error() {
    let r = Registry::new();
    let c = r.counter("x_total", "X.", &["peer"]).unwrap();
    c.add(&["a\"b\\c\nd"], 1).unwrap();
    assert!(r.render().contains("x_total{peer=\"a\\\"b\\\\c\\nd\"} 1"));
    assert_eq!(
        c.add(&[], 1),
        Err(MetricError::LabelCount {
            name: "x_total",
            expected: 1,
            given: 0
        })
    );
    assert!(matches!(
        r.gauge("x_total", "X.", &["peer"]),
        Err(MetricError::Redeclared("x_total"))
    ));
    // Declaring the same metric again gives the same series.
    let again = r.counter("x_total", "X.", &["peer"]).unwrap();
    again.add(&["p"], 3).unwrap();
    c.add(&["p"], 1).unwrap();
    assert!(r.render().contains("x_total{peer=\"p\"} 4"));
}
