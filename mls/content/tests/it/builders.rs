//! Builders and body readers.

use mimi_content::attachment::{self, AttachmentError};
use mimi_content::build::{gfm_mimi_escape, mention_markdown, random_salt};
use mimi_content::checks::{ReceiveContext, Suspicious, check_received};
use mimi_content::{Disposition, MimiContent, NestedPart};

#[test]
fn gfm_mimi_neutralises_html_tags_only() {
    assert_eq!(
        gfm_mimi_escape("<b>bold</b> and 1 < 2"),
        "&lt;b>bold&lt;/b> and 1 < 2"
    );
    assert_eq!(
        gfm_mimi_escape("<!-- c --> <?x?>"),
        "&lt;!-- c --> &lt;?x?>"
    );
    let part = NestedPart::markdown("<script>alert(1)</script>");
    assert_eq!(part.as_text(), Some("&lt;script>alert(1)&lt;/script>"));
}

#[test]
fn mentions_are_links_to_user_uris() {
    let text = format!(
        "hi {} and {}",
        mention_markdown("Bob [b]", "mimi://b.example/u/bob"),
        mention_markdown("Cathy", "mimi://c.example/u/cathy")
    );
    assert_eq!(
        text,
        "hi [@Bob b](mimi://b.example/u/bob) and [@Cathy](mimi://c.example/u/cathy)"
    );
    assert_eq!(
        NestedPart::markdown(&text).mentions(),
        vec!["mimi://b.example/u/bob", "mimi://c.example/u/cathy"]
    );
    assert!(
        NestedPart::markdown("[site](https://example.com)")
            .mentions()
            .is_empty()
    );
}

#[test]
fn attachments_seal_and_open() {
    let sealed = attachment::seal(
        b"holiday photo bytes",
        "image/jpeg",
        "https://a.example/s/1",
        "photo.jpg",
        "",
    )
    .unwrap();
    assert_eq!(sealed.part.enc_alg, attachment::ENC_ALG_AES_128_GCM);
    assert_eq!(sealed.part.size, sealed.ciphertext.len() as u64);
    assert_ne!(sealed.ciphertext, b"holiday photo bytes");
    assert_eq!(
        attachment::open(&sealed.part, &sealed.ciphertext).unwrap(),
        b"holiday photo bytes"
    );
    let mut altered = sealed.ciphertext.clone();
    altered[0] ^= 1;
    assert_eq!(
        attachment::open(&sealed.part, &altered),
        Err(AttachmentError::HashMismatch)
    );
    let mut no_hash = sealed.part.clone();
    no_hash.hash_alg = 0;
    assert_eq!(
        attachment::open(&no_hash, &altered),
        Err(AttachmentError::Decrypt)
    );
    let mut other = sealed.part.clone();
    other.enc_alg = 2;
    assert!(matches!(
        attachment::open(&other, &sealed.ciphertext),
        Err(AttachmentError::Unsupported {
            what: "encAlg",
            id: 2
        })
    ));
    // The part travels in a message and survives the round trip.
    let msg = MimiContent::text(random_salt().unwrap(), "").clone();
    let msg = MimiContent {
        nested_part: NestedPart::attachment(sealed.part.clone()),
        ..msg
    };
    let back = MimiContent::decode(&msg.encode().unwrap()).unwrap();
    assert_eq!(back.nested_part.disposition, Disposition::ATTACHMENT);
    assert_eq!(
        back.nested_part.display_text().unwrap(),
        format!(
            "[attachment: photo.jpg, {} octets]",
            sealed.ciphertext.len()
        )
    );
}

#[test]
fn salts_are_random() {
    assert_ne!(random_salt().unwrap(), random_salt().unwrap());
}

#[test]
fn display_text_prefers_markdown_among_alternatives() {
    let alts = NestedPart::alternatives(vec![
        NestedPart::html("<p>hi</p>"),
        NestedPart::text("hi (plain)"),
        NestedPart::markdown("**hi**"),
    ]);
    assert_eq!(alts.display_text().unwrap(), "**hi**");
    assert_eq!(
        NestedPart::multi_reaction(&["a", "b"]).reactions(),
        vec!["a", "b"]
    );
    assert!(NestedPart::text("not a reaction").reactions().is_empty());
}

/// CONTENT-9.1-future, -before-publication, -before-room, -expiry-past, -expiry-future
#[test]
fn receive_checks() {
    let now = 1_800_000_000_000;
    let ctx = |ts| ReceiveContext {
        now_ms: now,
        hub_timestamp_ms: ts,
        room_created_ms: Some(now - 1_000_000),
    };
    let plain = MimiContent::text([0; 16], "x");
    assert_eq!(check_received(&plain, &ctx(now)), Ok(()));
    assert!(matches!(
        check_received(&plain, &ctx(now + 10 * 60_000)),
        Err(Suspicious::TimestampInFuture(_))
    ));
    assert!(matches!(
        check_received(&plain, &ctx(1_000)),
        Err(Suspicious::TimestampBeforePublication(_))
    ));
    assert!(matches!(
        check_received(&plain, &ctx(now - 2_000_000)),
        Err(Suspicious::TimestampBeforeRoom(_))
    ));
    let mut old = plain.clone();
    old.expires = Some(mimi_content::Expiration {
        relative: false,
        time: 1_700_000_000,
    });
    assert_eq!(
        check_received(&old, &ctx(now)),
        Err(Suspicious::ExpiryTooFarPast)
    );
    let mut far = plain.clone();
    far.expires = Some(mimi_content::Expiration {
        relative: true,
        time: 400 * 24 * 3600,
    });
    assert_eq!(
        check_received(&far, &ctx(now)),
        Err(Suspicious::ExpiryTooFarFuture)
    );
}
