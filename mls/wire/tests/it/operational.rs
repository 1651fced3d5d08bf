//! The logging (§6.5, `ROOM-policy-logging`), chat bot (§6.7, `ROOM-policy-bots`) and MLS
//! operational (§7, `ROOM-policy-operational`) components of room-policy-03: byte-exact
//! encodings, round-trips and the draft's invariants refused.

use mimi_wire::codec::Body;
use mimi_wire::operational::{
    AppMessagePolicy, ExtendedCapabilities, MinDefaultMaxTime, OperationalParameters,
    PendingProposalPolicy, WIRE_FORMAT_PRIVATE_MESSAGE, WIRE_FORMAT_PUBLIC_MESSAGE,
};
use mimi_wire::room_policy::{Bot, BotPolicy, LoggingPolicy, MediaType, Optionality};
use proptest::prelude::*;

fn text(s: &str) -> String {
    format!("{:02x}{}", s.len(), hex::encode(s))
}

fn exact<T: Body + PartialEq + std::fmt::Debug>(v: &T, hex_bytes: &str) {
    let b = v.encode();
    assert_eq!(hex::encode(&b), hex_bytes, "{}", T::NAME);
    assert_eq!(&T::decode(&b).unwrap(), v, "{}", T::NAME);
}

#[test]
fn room_policy_logging_encoding_is_byte_exact() {
    let client = "mimi://a.example/d/log/1";
    let human = "https://a.example/logging";
    let mut p = LoggingPolicy {
        logging: Optionality::Required,
        logging_clients: vec![client.into()],
        machine_readable_policy: String::new(),
        human_readable_policy: human.into(),
    };
    // Optionality, Uri logging_clients<V> (one Uri), Uri machine (empty), Uri human.
    exact(
        &p,
        &format!(
            "01{:02x}{}00{}",
            client.len() + 1,
            text(client),
            text(human)
        ),
    );
    assert!(p.active());
    assert_eq!(p.second_client_of_a_provider(), None);
    p.logging_clients.push("mimi://a.example/d/log/2".into());
    assert_eq!(
        p.second_client_of_a_provider(),
        Some("mimi://a.example/d/log/2")
    );
    // Optional with no logging client: valid, and logging is not active.
    let idle = LoggingPolicy::decode(&hex::decode("00000000").unwrap()).unwrap();
    assert!(!idle.active());
    // Required with no logging client is refused ("needs to contain at least one").
    assert!(LoggingPolicy::decode(&hex::decode("01000000").unwrap()).is_err());
    // Forbidden: the select arm is empty.
    exact(
        &LoggingPolicy {
            logging: Optionality::Forbidden,
            ..LoggingPolicy::default()
        },
        "02",
    );
    assert!(LoggingPolicy::decode(&hex::decode("0200").unwrap()).is_err());
}

#[test]
fn room_policy_bots_encoding_is_byte_exact() {
    let poker = Bot {
        name: "poker".into(),
        description: String::new(),
        homepage: String::new(),
        local_client_bot: false,
        bot_role_index: 3,
        can_target_message_in_group: true,
        per_user_content: true,
    };
    // name, description (empty), homepage (empty), local_client_bot, bot_role_index, two bools.
    let one = format!("{}000000000000030101", text("poker"));
    exact(
        &BotPolicy {
            allowed_bots: vec![poker.clone()],
        },
        &format!("{:02x}{one}", one.len() / 2),
    );
    exact(&BotPolicy::default(), "00");
    // A local client bot acts in role 0 only.
    let local = Bot {
        local_client_bot: true,
        bot_role_index: 0,
        ..poker.clone()
    };
    let ok = BotPolicy {
        allowed_bots: vec![local.clone()],
    };
    assert_eq!(BotPolicy::decode(&ok.encode()).unwrap(), ok);
    let bad = BotPolicy {
        allowed_bots: vec![Bot {
            bot_role_index: 2,
            ..local
        }],
    };
    assert!(BotPolicy::decode(&bad.encode()).is_err());
    // A bool other than 0 or 1 is refused.
    let mut b = ok.encode();
    let last = b.len() - 1;
    b[last] = 2;
    assert!(BotPolicy::decode(&b).is_err());
}

fn permissive_hex() -> String {
    let caps = "00".repeat(10);
    let time = "00".repeat(24);
    format!(
        "{caps}{caps}{caps}00\
         0101\
         00\
         {time}\
         00000000000000\
         {}{time}00000000{time}00000000",
        "00".repeat(24)
    )
}

#[test]
fn room_policy_operational_encoding_is_byte_exact() {
    exact(&OperationalParameters::permissive(), &permissive_hex());
    let p = OperationalParameters {
        mandatory_capabilities: ExtendedCapabilities {
            cipher_suites: vec![0x0001],
            ..Default::default()
        },
        forbidden_capabilities: ExtendedCapabilities {
            proposals: vec![0x0005],
            media_types: vec![MediaType::parse("image/gif").unwrap()],
            content_types: vec![2],
            ..Default::default()
        },
        handshake_formats: vec![WIRE_FORMAT_PUBLIC_MESSAGE],
        external_proposal_allowed: false,
        external_commit_allowed: false,
        pending_proposal_policy: PendingProposalPolicy::RandomDelay {
            minimum_delay_ms: 10,
            maximum_delay_ms: 500,
        },
        leaf_node_update_time: MinDefaultMaxTime {
            minimum_time: 60,
            default_time: 86400,
            maximum_time: 604800,
        },
        app_message_policy: AppMessagePolicy {
            epoch_tolerance: 2,
            pad_to_size: 32,
            max_generations_skipahead: 1000,
        },
        max_kp_lifetime: 7_776_000,
        ..OperationalParameters::permissive()
    };
    let mandatory = format!("0002000100{}", "00".repeat(7));
    let gif = format!("{}00", text("image/gif"));
    let forbidden = format!(
        "000000020005{}{:02x}{gif}0102",
        "00".repeat(4),
        gif.len() / 2
    );
    let time = "00".repeat(24);
    let expected = format!(
        "{mandatory}{}{forbidden}\
         020001\
         0000\
         02000000000000000a00000000000001f4\
         000000000000003c00000000000151800000000000093a80\
         020020000003e8\
         000000000076a700\
         {}{time}00000000{time}00000000",
        "00".repeat(10),
        "00".repeat(16)
    );
    exact(&p, &expected);
}

#[test]
fn room_policy_operational_invariants_are_refused() {
    let enc = |p: &OperationalParameters| p.encode();
    // A code point both mandatory and forbidden.
    let mut p = OperationalParameters::permissive();
    p.mandatory_capabilities.extensions = vec![0x0002];
    p.forbidden_capabilities.extensions = vec![0x0002];
    assert!(OperationalParameters::decode(&enc(&p)).is_err());
    // Handshakes as PrivateMessage: the hub could not follow the group.
    let mut p = OperationalParameters::permissive();
    p.handshake_formats = vec![WIRE_FORMAT_PRIVATE_MESSAGE];
    assert!(OperationalParameters::decode(&enc(&p)).is_err());
    // A random delay whose maximum is below its minimum.
    let mut p = OperationalParameters::permissive();
    p.pending_proposal_policy = PendingProposalPolicy::RandomDelay {
        minimum_delay_ms: 9,
        maximum_delay_ms: 8,
    };
    assert!(OperationalParameters::decode(&enc(&p)).is_err());
    // A default time outside [minimum, maximum].
    let mut p = OperationalParameters::permissive();
    p.leaf_node_update_time = MinDefaultMaxTime {
        minimum_time: 10,
        default_time: 5,
        maximum_time: 0,
    };
    assert!(OperationalParameters::decode(&enc(&p)).is_err());
    p.leaf_node_update_time = MinDefaultMaxTime {
        minimum_time: 10,
        default_time: 50,
        maximum_time: 20,
    };
    assert!(OperationalParameters::decode(&enc(&p)).is_err());
    // No maximum (0) with a large default is fine.
    p.leaf_node_update_time.maximum_time = 0;
    assert!(OperationalParameters::decode(&enc(&p)).is_ok());
    // An extension strategy carries the ComponentID of its parameters.
    let mut p = OperationalParameters::permissive();
    p.pending_proposal_policy = PendingProposalPolicy::Extension {
        strategy: 7,
        id_of_strategy_params: 0x8001,
    };
    assert_eq!(OperationalParameters::decode(&enc(&p)).unwrap(), p);
    // Trailing bytes and truncation are refused.
    let mut b = enc(&OperationalParameters::permissive());
    b.push(0);
    assert!(OperationalParameters::decode(&b).is_err());
    b.truncate(b.len() - 2);
    assert!(OperationalParameters::decode(&b).is_err());
}

proptest! {
    #[test]
    fn room_policy_operational_round_trips(
        suites in proptest::collection::vec(any::<u16>(), 0..4),
        proposals in proptest::collection::vec(0u16..100, 0..4),
        ext_commit in any::<bool>(), ext_prop in any::<bool>(),
        tol in any::<u8>(), pad in any::<u16>(), skip in any::<u32>(),
        lo in 0u64..1000, span in 0u64..1000, kp in any::<u64>(),
        strategy in 0u8..=255, params in any::<u16>(),
    ) {
        let pending = match strategy {
            0 => PendingProposalPolicy::Unspecified,
            1 => PendingProposalPolicy::ImmediateCommit,
            2 => PendingProposalPolicy::RandomDelay { minimum_delay_ms: lo, maximum_delay_ms: lo + span },
            s => PendingProposalPolicy::Extension { strategy: s, id_of_strategy_params: params },
        };
        let p = OperationalParameters {
            default_capabilities: ExtendedCapabilities { cipher_suites: suites, ..Default::default() },
            forbidden_capabilities: ExtendedCapabilities { proposals, ..Default::default() },
            external_commit_allowed: ext_commit,
            external_proposal_allowed: ext_prop,
            pending_proposal_policy: pending,
            app_message_policy: AppMessagePolicy { epoch_tolerance: tol, pad_to_size: pad, max_generations_skipahead: skip },
            sender_nonce_keypair_lifetime: MinDefaultMaxTime { minimum_time: lo, default_time: lo + span, maximum_time: lo + 2 * span },
            max_kp_lifetime: kp,
            ..OperationalParameters::permissive()
        };
        prop_assert_eq!(OperationalParameters::decode(&p.encode()).unwrap(), p);
        let l = LoggingPolicy {
            logging: if ext_commit { Optionality::Required } else { Optionality::Optional },
            logging_clients: vec![format!("mimi://p{tol}.example/d/l/1")],
            machine_readable_policy: String::new(),
            human_readable_policy: format!("https://p{pad}.example/"),
        };
        prop_assert_eq!(LoggingPolicy::decode(&l.encode()).unwrap(), l);
    }

    #[test]
    fn room_policy_operational_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = OperationalParameters::decode(&bytes);
        let _ = LoggingPolicy::decode(&bytes);
        let _ = BotPolicy::decode(&bytes);
    }
}
