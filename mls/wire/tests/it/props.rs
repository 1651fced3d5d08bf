//! Random and mutated bytes never panic a decoder.

use crate::bodies::{decode_any, samples};
use mimi_wire::Limits;
use proptest::prelude::*;

const STRUCTS: [&str; 18] = [
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
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for s in STRUCTS {
            let _ = decode_any(s, &bytes, Limits::DEFAULT);
        }
        let _ = mimi_wire::fanout::split_notify(&bytes, Limits::DEFAULT);
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
