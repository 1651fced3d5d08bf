//! Consent entries (per room or any room, overwritten) and abuse reports (a repeat kept once).

use crate::{backends, tag};

#[tokio::test]
async fn store_consent_entries_and_abuse_reports() {
    for db in backends("consent").await {
        let s = &db.store;
        let (req, target) = (
            format!("mimi://b.example/u/{}", tag("r")),
            format!("mimi://a.example/u/{}", tag("t")),
        );
        let room = "mimi://a.example/r/x";
        assert_eq!(s.consent(&req, &target, room).await.unwrap(), None);
        s.set_consent(&req, &target, "", "request", 1)
            .await
            .unwrap();
        assert_eq!(
            s.consent(&req, &target, room).await.unwrap().as_deref(),
            Some("request")
        );
        s.set_consent(&req, &target, "", "grant", 2).await.unwrap();
        assert_eq!(
            s.consent(&req, &target, room).await.unwrap().as_deref(),
            Some("grant")
        );
        // A room-specific entry wins over the any-room one.
        s.set_consent(&req, &target, room, "revoke", 3)
            .await
            .unwrap();
        assert_eq!(
            s.consent(&req, &target, room).await.unwrap().as_deref(),
            Some("revoke")
        );
        assert_eq!(
            s.consent(&req, &target, "mimi://a.example/r/y")
                .await
                .unwrap()
                .as_deref(),
            Some("grant")
        );
        assert_eq!(s.consent_entries(&target).await.unwrap().len(), 2);

        let body = tag("report").into_bytes();
        assert!(
            s.add_abuse_report(room, "b.example", &body, 10)
                .await
                .unwrap()
        );
        assert!(
            !s.add_abuse_report(room, "b.example", &body, 11)
                .await
                .unwrap(),
            "kept once"
        );
        let kept = s.abuse_reports(10, 1000).await.unwrap();
        assert_eq!(kept.iter().filter(|r| r.body == body).count(), 1);
    }
}
