//! The conformance runner (issue 9) against a mimi-node started for the purpose, as hub and as
//! follower: every check passes; against a node told to break two rules, the runner names
//! exactly those checks; and the binary, as a process, writes JSON and JUnit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mimi_conformance::{Options, Outcome, Role, run};
use mimi_harness::*;
use std::sync::Arc;

async fn target(extra: &str) -> (Federation, std::path::PathBuf) {
    let fed = federation_with(
        &[("a.example", "a.example", "sqlite".into())],
        10_000,
        extra,
    )
    .await;
    let ca_dir = fed.dir.join("ca");
    std::fs::create_dir_all(&ca_dir).unwrap();
    std::fs::write(ca_dir.join("ca.crt"), &fed.ca.cert_pem).unwrap();
    std::fs::write(ca_dir.join("ca.key"), &fed.ca.key_pem).unwrap();
    (fed, ca_dir)
}

fn options(fed: &Federation, ca_dir: std::path::PathBuf) -> Options {
    let node = fed.nodes[0].as_ref().unwrap();
    // The target learns where the runner is as soon as it listens.
    Options {
        target: "a.example".into(),
        target_addr: fed.addrs[0].clone(),
        role: Role::Both,
        me: "conformance.example".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ca_dir,
        work_dir: fed.dir.join("runner"),
        target_client_api: true,
        announce: Some(announce_to(node)),
    }
}

fn announce_to(node: &mimi_node::run::Running) -> mimi_conformance::Announce {
    let setter = node.peer_setter();
    Arc::new(move |domain: &str, addr: std::net::SocketAddr| setter(domain, addr.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_runner_passes_against_mimi_node_as_hub_and_follower() {
    let (fed, ca_dir) = target("").await;
    let report = run(&options(&fed, ca_dir)).await;
    let text = report.human();
    assert_eq!(report.failures(), 0, "{text}");
    for id in [
        "directory.present",
        "directory.templates",
        "mtls.no-certificate",
        "mtls.from-mismatch",
        "hub.flow.welcome",
        "keyMaterial.success",
        "keyMaterial.never-reused",
        "keyMaterial.exhausted",
        "keyMaterial.user-unknown",
        "update.accepted",
        "update.wrong-epoch",
        "update.not-allowed",
        "update.invalid-proposal",
        "submitMessage.accepted",
        "submitMessage.epoch-too-old",
        "submitMessage.not-participant",
        "groupInfo.authorized",
        "groupInfo.not-authorized",
        "hub.flow.fanout",
        "keyMaterial.target-provider",
        "follower.flow.welcome",
        "notify.new-201",
        "notify.repeat-201",
        "notify.repeat-not-delivered-twice",
        "notify.malformed",
        "follower.flow.submit-forwarded",
        "identifierQuery.exact-handle",
        "identifierQuery.not-found",
        "identifierQuery.all-elements",
        "consent.request-201",
        "consent.request-wrong-operation",
        "consent.update-201",
        "consent.no-consent-without-grant",
        "consent.key-material-after-grant",
        "consent.revoked-no-consent",
        "reportAbuse.accepted",
        "reportAbuse.foreign-reporter",
        "reportAbuse.malformed",
        "groupInfo.pending-proposals",
        "groupInfo.joining-code-unknown",
        "update.join-link-single-use",
        "groupInfo.joining-code-valid",
        "groupInfo.joining-code-used",
        "follower.membership.removed-gets-nothing",
        "submitMessage.frank-verifies",
        "update.external-commit-requester",
        "update.external-commit-requester-key",
        "follower.hub-proposal-delivered",
        "proxyDownload.member",
        "proxyDownload.non-member",
        "proxyDownload.privacy-forbidden",
        "proxyDownload.host-not-listed",
        "ohttp.gateway-member",
        "ohttp.gateway-non-member",
        "ohttp.gateway-undecryptable",
        "assets.policy-size",
        "assets.policy-media-type",
        "groupInfo.joining-code-expired",
        "update.resync-same-client",
        "hub.mls-rs-device",
        "update.resync-other-client-refused",
        "update.external-commit-forbidden",
        "update.forbidden-proposal-type",
    ] {
        let c = report
            .get(id)
            .unwrap_or_else(|| panic!("no check {id}: {text}"));
        assert_eq!(c.outcome, Outcome::Pass, "{id}: {text}");
    }
    let junit = report.junit();
    assert!(junit.contains("failures=\"0\""), "{junit}");
    fed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_runner_names_the_rules_a_broken_target_breaks() {
    let (fed, ca_dir) = target(
        "[faults]\nreuse_key_packages = true\nnotify_repeat_status = 500\n\
         identifier_query_first_element_only = true\nkey_material_ignores_consent = true\n\
         report_abuse_any_reporter = true\ngroup_info_without_pending = true\n\
         group_info_accepts_any_code = true\njoin_link_reuse = true\n\
         follower_keeps_removed_members = true\nfrank_wrong_key = true\n\
         external_commit_any_requester = true\nasset_policy_ignored = true\n\
         proxy_download_any_provider = true\njoin_link_never_expires = true\n\
         directory_http_templates = true\nnotify_accepts_malformed = true\n\
         report_abuse_accepts_malformed = true\nidentifier_query_not_found_success = true\n\
         key_material_unknown_user_success = true\ngroup_info_any_requester = true\n\
         consent_request_any_operation = true\nresync_refused = true\nconsent_grant_unchecked = true\n\
         external_commit_any_key = true\nfollower_drops_hub_proposals = true\n\
         external_commit_removes_any_leaf = true\noperational_policy_ignored = true\n",
    )
    .await;
    let report = run(&options(&fed, ca_dir)).await;
    let text = report.human();
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
        .map(|c| c.id.as_str())
        .collect();
    assert!(failed.contains(&"keyMaterial.never-reused"), "{text}");
    assert!(failed.contains(&"notify.repeat-201"), "{text}");
    for id in [
        "identifierQuery.all-elements",
        "consent.no-consent-without-grant",
        "consent.revoked-no-consent",
        "reportAbuse.foreign-reporter",
        "groupInfo.pending-proposals",
        "groupInfo.joining-code-unknown",
        "update.join-link-single-use",
        "follower.membership.removed-gets-nothing",
        "submitMessage.frank-verifies",
        "update.external-commit-requester",
        "update.external-commit-requester-key",
        "follower.hub-proposal-delivered",
        "assets.policy-size",
        "assets.policy-media-type",
        "proxyDownload.non-member",
        "ohttp.gateway-non-member",
        "proxyDownload.privacy-forbidden",
        "proxyDownload.host-not-listed",
        "groupInfo.joining-code-expired",
        "directory.templates",
        "notify.malformed",
        "reportAbuse.malformed",
        "identifierQuery.not-found",
        "keyMaterial.user-unknown",
        "groupInfo.not-authorized",
        "consent.request-wrong-operation",
        "update.resync-same-client",
        "consent.grant-foreign-key-package",
        "update.resync-other-client-refused",
        "update.external-commit-forbidden",
        "update.forbidden-proposal-type",
    ] {
        assert!(failed.contains(&id), "{id}: {text}");
    }
    // The rules the faults leave alone still pass.
    for id in [
        "identifierQuery.exact-handle",
        "consent.key-material-after-grant",
        "reportAbuse.accepted",
        "groupInfo.authorized",
        "proxyDownload.member",
        "ohttp.gateway-member",
        "ohttp.gateway-undecryptable",
    ] {
        assert!(!failed.contains(&id), "{id}: {text}");
    }
    let c = report.get("notify.repeat-201").unwrap();
    assert!(
        c.sent.is_some() && c.received.as_deref().unwrap_or("").starts_with("500"),
        "{c:?}"
    );
    assert!(report.junit().contains("<failure"), "{}", report.junit());
    fed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_runner_names_exactly_the_attachment_and_link_faults() {
    // Each of these faults alone (no fault that also breaks the same checks): the runner
    // fails exactly the checks it breaks and passes the rest.
    let (fed, ca_dir) = target(
        "[faults]\nasset_policy_ignored = true\nproxy_download_any_provider = true\n\
         join_link_never_expires = true\nexternal_commit_any_key = true\n",
    )
    .await;
    let report = run(&options(&fed, ca_dir)).await;
    let text = report.human();
    let mut failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
        .map(|c| c.id.as_str())
        .collect();
    failed.sort_unstable();
    assert_eq!(
        failed,
        [
            "assets.policy-media-type",
            "assets.policy-size",
            "groupInfo.joining-code-expired",
            "ohttp.gateway-non-member",
            "proxyDownload.host-not-listed",
            "proxyDownload.non-member",
            "proxyDownload.privacy-forbidden",
            "update.external-commit-requester-key",
        ],
        "{text}"
    );
    fed.shutdown().await;
}
