//! Random and mutated bytes never panic a decoder.

use crate::bodies::{decode_any, samples};
use mimi_wire::Limits;
use proptest::prelude::*;

const STRUCTS: [&str; 20] = [
    "ParticipantListData",
    "ParticipantListUpdate",
    "RoomMetaData",
    "KeyMaterialRequest",
    "KeyMaterialResponse",
    "HandshakeBundle",
    "UpdateRoomResponse",
    "SubmitMessageRequest",
    "SubmitMessageResponse",
    "FanoutMessage",
    "GroupInfoRequest",
    "GroupInfoRatchetTreeTBE",
    "GroupInfoResponse",
    "ConsentEntry",
    "ConsentScope",
    "IdentifierRequest",
    "IdentifierResponse",
    "AbuseReport",
    "FrankAAD",
    "FrankingAgentData",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for s in STRUCTS {
            let _ = decode_any(s, &bytes, Limits::DEFAULT);
        }
        let _ = mimi_wire::fanout::split_notify(&bytes, Limits::DEFAULT);
        let _ = mimi_wire::franking::frank_aad_of(&bytes);
        if let Ok(m) = mimi_wire::Mls::<openmls::prelude::MlsMessageIn>::from_bytes(bytes.clone()) {
            let _ = mimi_wire::mls_kind::header(&m);
            let _ = mimi_wire::mls_kind::private_authenticated_data(&m);
        }
    }

    #[test]
    fn random_text_never_panics_the_text_parsers(text in "\\PC{0,80}", seg in "[%/a-zA-Z0-9]{0,20}") {
        let _ = mimi_wire::id::path_decode(&seg);
        let _ = mimi_wire::id::path_decode(&text);
        let _ = mimi_wire::directory::Directory::from_json(&text);
        let json = format!("{{\"keyMaterial\": {text:?}}}");
        let _ = mimi_wire::directory::Directory::from_json(&json);
        let d = mimi_wire::directory::Directory::for_base("https://a.example/v1");
        for e in mimi_wire::directory::Endpoint::ALL {
            let _ = d.extract(e, &text);
            // Expansion and extraction are inverse for every non-empty value.
            if !text.is_empty() {
                prop_assert_eq!(d.extract(e, &d.expand(e, &text)), Ok(text.clone()));
            }
        }
    }

    #[test]
    fn mutated_samples_never_panic_and_what_decodes_re_encodes(
        which in 0usize..64,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let all = samples();
        let (_, st, _, bytes) = &all[which % all.len()];
        let mut b = bytes.clone();
        for (i, v) in flips {
            let i = i.index(b.len());
            b[i] = v;
        }
        if let Ok((_, again)) = decode_any(st, &b, Limits::DEFAULT) {
            // Whatever decodes must re-encode to the same bytes (no silent normalisation).
            prop_assert_eq!(again, b);
        }
    }
}
