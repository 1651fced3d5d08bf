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

// ---- streaming attachments (mimi_content::attachment::stream) ----

use mimi_content::ExternalPart;
use mimi_content::attachment::stream::{Opener, Sealed, Sealer};
use mimi_content::attachment::{open, seal_with};

fn stream_seal(data: &[u8], chunk: usize, key: [u8; 16], nonce: [u8; 12]) -> (Vec<u8>, Sealed) {
    let mut s = Sealer::with_key(key, nonce);
    let mut out = Vec::new();
    for c in data.chunks(chunk.max(1)) {
        let mut c = c.to_vec();
        s.seal(&mut c).unwrap();
        out.extend_from_slice(&c);
    }
    let sealed = s.finish();
    out.extend_from_slice(&sealed.tag);
    (out, sealed)
}

fn stream_open(
    part: &ExternalPart,
    stored: &[u8],
    chunk: usize,
) -> Result<Vec<u8>, AttachmentError> {
    let mut o = Opener::new(part)?;
    let mut out = Vec::new();
    for c in stored.chunks(chunk.max(1)) {
        out.extend(o.update(c)?);
    }
    o.finish()?;
    Ok(out)
}

/// CONTENT-external-stream: piecewise sealing gives exactly the one-shot AES-128-GCM
/// ciphertext, tag and hash, for sizes around block boundaries and any chunking; and the
/// opener reads both back.
#[test]
fn content_external_stream_equals_one_shot_aes_128_gcm() {
    let key = [7u8; 16];
    let nonce = [9u8; 12];
    for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 1000, 4097] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
        let one = seal_with(&data, key, nonce, "application/octet-stream", "u", "f", "").unwrap();
        for chunk in [1usize, 5, 16, 17, 64, 5000] {
            let (stored, sealed) = stream_seal(&data, chunk, key, nonce);
            assert_eq!(stored, one.ciphertext, "len {len} chunk {chunk}");
            let part = sealed.part("application/octet-stream", "u", "f", "");
            assert_eq!(part, one.part, "len {len} chunk {chunk}");
            assert_eq!(open(&part, &stored).unwrap(), data);
            for rchunk in [1usize, 3, 16, 20, 7000] {
                assert_eq!(stream_open(&part, &stored, rchunk).unwrap(), data);
            }
        }
    }
}

/// CONTENT-external-fresh-key: every sealer draws its own key and nonce.
#[test]
fn content_external_fresh_key_per_file() {
    let a = Sealer::new().unwrap().finish();
    let b = Sealer::new().unwrap().finish();
    assert_ne!(a.key, b.key);
    assert_ne!(a.nonce, b.nonce);
}

/// CONTENT-external-hash: one altered octet anywhere (ciphertext or tag) is a hash
/// mismatch; with no hash it is a decryption failure; a short or long download is a size
/// mismatch; unknown algorithms and bad key sizes are refused before any download.
#[test]
fn content_external_hash_tampering_is_refused() {
    let data = vec![0x42u8; 300];
    let (stored, sealed) = stream_seal(&data, 64, [1; 16], [2; 12]);
    let part = sealed.part("", "u", "f", "");
    for i in [0, 150, stored.len() - 1] {
        let mut bad = stored.clone();
        bad[i] ^= 1;
        assert_eq!(
            stream_open(&part, &bad, 33),
            Err(AttachmentError::HashMismatch)
        );
        let mut no_hash = part.clone();
        no_hash.hash_alg = 0;
        no_hash.content_hash.clear();
        assert_eq!(
            stream_open(&no_hash, &bad, 33),
            Err(AttachmentError::Decrypt)
        );
    }
    assert!(matches!(
        stream_open(&part, &stored[..stored.len() - 1], 50),
        Err(AttachmentError::SizeMismatch { .. })
    ));
    let mut long = stored.clone();
    long.push(0);
    assert!(matches!(
        stream_open(&part, &long, 50),
        Err(AttachmentError::SizeMismatch { .. })
    ));
    let mut p = part.clone();
    p.enc_alg = 2;
    assert!(matches!(
        Opener::new(&p),
        Err(AttachmentError::Unsupported { what: "encAlg", .. })
    ));
    let mut p = part.clone();
    p.hash_alg = 9;
    assert!(matches!(
        Opener::new(&p),
        Err(AttachmentError::Unsupported {
            what: "hashAlg",
            ..
        })
    ));
    let mut p = part.clone();
    p.key.pop();
    assert!(matches!(
        Opener::new(&p),
        Err(AttachmentError::BadKeyOrNonce)
    ));
    let mut p = part;
    p.content_hash.pop();
    assert!(matches!(Opener::new(&p), Err(AttachmentError::BadHash)));
}
