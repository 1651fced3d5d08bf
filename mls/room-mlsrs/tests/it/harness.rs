//! An in-memory room: openmls devices (mimi-room), mls-rs devices (this crate) and the hub.

use mimi_room::client::{Device as OmDevice, Event as OmEvent, Room as OmRoom};
use mimi_room::codepoints::CodePoints;
use mimi_room::hub::{HubRoom, UpdateRejection};
use mimi_room::presets::private_group;
use mimi_room_mlsrs::device::{Device as RsDevice, Event as RsEvent, Room as RsRoom};
use mimi_wire::codec::Body;
use mimi_wire::common::RatchetTreeOption;
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::id::{ClientUri, RoomUri, UserUri};
use mimi_wire::update::HandshakeBundle;
use openmls::prelude::{BasicCredential, ExternalSender};
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::types::SignatureScheme;

pub fn room_uri() -> RoomUri {
    RoomUri::parse("mimi://a.example/r/mixed").unwrap()
}

pub fn user(u: &str) -> UserUri {
    UserUri::parse(u).unwrap()
}

/// A member on either library. (Both variants are about 2 KB: not worth boxing in a test.)
#[allow(clippy::large_enum_variant)]
pub enum Member {
    Om(OmDevice, OmRoom),
    Rs(RsDevice, RsRoom),
}

impl Member {
    pub fn client(&self) -> ClientUri {
        match self {
            Member::Om(d, _) => d.client.clone(),
            Member::Rs(d, _) => d.client.clone(),
        }
    }

    pub fn epoch(&self) -> u64 {
        match self {
            Member::Om(_, r) => r.epoch(),
            Member::Rs(_, r) => r.epoch(),
        }
    }

    pub fn epoch_authenticator(&self) -> Vec<u8> {
        match self {
            Member::Om(_, r) => r.group.epoch_authenticator().as_slice().to_vec(),
            Member::Rs(_, r) => r.epoch_authenticator().unwrap(),
        }
    }

    pub fn state(&self) -> mimi_room::state::RoomState {
        match self {
            Member::Om(d, r) => r.state(d).unwrap(),
            Member::Rs(_, r) => r.state().unwrap(),
        }
    }

    pub fn clients(&self) -> Vec<ClientUri> {
        let mut c = match self {
            Member::Om(_, r) => r.clients(),
            Member::Rs(_, r) => r.clients(),
        };
        c.sort();
        c
    }

    /// Processes a handshake fanned out by the hub; returns whether it was a commit.
    pub fn process_handshake(&mut self, item: &FanoutMessage) {
        match self {
            Member::Om(d, r) => {
                let ev = r.process(d, item).unwrap();
                assert!(
                    matches!(ev, OmEvent::Commit { .. } | OmEvent::Proposal),
                    "{}: {ev:?}",
                    d.client
                );
            }
            Member::Rs(d, r) => {
                let ev = r.process(item.message.as_bytes()).unwrap();
                assert!(
                    matches!(ev, RsEvent::Commit { .. } | RsEvent::Proposal),
                    "{}: {ev:?}",
                    d.client
                );
            }
        }
    }

    /// Merges this member's own accepted commit.
    pub fn merge(&mut self) {
        match self {
            Member::Om(d, r) => r.merge(d).unwrap(),
            Member::Rs(_, r) => r.merge().unwrap(),
        }
    }

    pub fn discard(&mut self) {
        match self {
            Member::Om(d, r) => r.discard(d).unwrap(),
            Member::Rs(_, r) => r.discard(),
        }
    }

    /// Encrypts `content`; the MLSMessage bytes.
    pub fn send(&mut self, content: &[u8]) -> Vec<u8> {
        match self {
            Member::Om(d, r) => r.send(d, content).unwrap().app_message.as_bytes().to_vec(),
            Member::Rs(_, r) => r.send(content).unwrap(),
        }
    }

    /// Decrypts an application message; (sender, plaintext).
    pub fn receive(&mut self, message: &[u8]) -> (ClientUri, Vec<u8>) {
        match self {
            Member::Om(d, r) => {
                let item = FanoutMessage {
                    timestamp: 2,
                    message: mimi_wire::Mls::from_bytes(message.to_vec()).unwrap(),
                    extra: FanoutExtra::Application(None),
                };
                match r.process(d, &item).unwrap() {
                    OmEvent::Message {
                        sender, content, ..
                    } => (sender, content),
                    other => panic!("{}: {other:?}", d.client),
                }
            }
            Member::Rs(d, r) => match r.process(message).unwrap() {
                RsEvent::Message {
                    sender, content, ..
                } => (sender.unwrap(), content),
                other => panic!("{}: {other:?}", d.client),
            },
        }
    }
}

pub fn om_device(uri: &str) -> OmDevice {
    OmDevice::new(ClientUri::parse(uri).unwrap()).unwrap()
}

pub fn rs_device(uri: &str) -> RsDevice {
    RsDevice::new(ClientUri::parse(uri).unwrap()).unwrap()
}

pub fn hub_sender() -> ExternalSender {
    let k = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    ExternalSender::new(
        k.to_public_vec().into(),
        BasicCredential::new(b"mimi://a.example".to_vec()).into(),
    )
}

/// The room: the hub and its members (index 0 created it).
pub struct Mixed {
    pub hub: HubRoom,
    pub members: Vec<Member>,
}

impl Mixed {
    /// An openmls device of Alice creates the room (private-group preset).
    pub fn new(creator: &str) -> Self {
        let cp = CodePoints::DRAFT;
        let dev = om_device(creator);
        let (room, gi, tree) = dev
            .create_room(
                &room_uri(),
                &private_group(&cp),
                hub_sender(),
                Some("Mixed"),
            )
            .unwrap();
        let hub = HubRoom::bootstrap(room_uri(), &gi, &tree).unwrap();
        let m = Mixed {
            hub,
            members: vec![Member::Om(dev, room)],
        };
        m.assert_agree();
        m
    }

    /// After every epoch (`ROOM-agree` across libraries): the same epoch, epoch authenticator,
    /// room state and members everywhere, and the hub's state and members are the same.
    pub fn assert_agree(&self) {
        let hub_state = self.hub.state().unwrap();
        let mut hub_clients = self.hub.clients();
        hub_clients.sort();
        let first = self.members[0].epoch_authenticator();
        assert_eq!(
            first.len(),
            32,
            "SHA-256 suite: 32-octet epoch authenticator"
        );
        for m in &self.members {
            let c = m.client();
            assert_eq!(m.epoch(), self.hub.epoch(), "{c}: epoch");
            assert_eq!(m.epoch_authenticator(), first, "{c}: epoch authenticator");
            assert_eq!(m.state(), hub_state, "{c}: room state");
            assert_eq!(m.clients(), hub_clients, "{c}: members");
        }
    }

    /// `sender` sends a commit bundle to the hub; on acceptance every other member processes
    /// it and the sender merges. Returns the Welcome (bare) and tree, if any.
    pub fn commit(
        &mut self,
        sender: usize,
        bundle: HandshakeBundle,
    ) -> Result<
        Option<(mimi_wire::Mls<openmls::prelude::Welcome>, RatchetTreeOption)>,
        UpdateRejection,
    > {
        let bundle = HandshakeBundle::decode(&bundle.encode()).unwrap();
        match self.hub.handle_update(&bundle) {
            Ok(_) => {
                let HandshakeBundle::Commit {
                    commit,
                    welcome,
                    ratchet_tree,
                    ..
                } = &bundle
                else {
                    panic!("not a commit")
                };
                let item = FanoutMessage {
                    timestamp: 1,
                    message: commit.clone(),
                    extra: FanoutExtra::Commit(vec![]),
                };
                let item = FanoutMessage::decode(&item.encode()).unwrap();
                for (i, m) in self.members.iter_mut().enumerate() {
                    if i != sender {
                        m.process_handshake(&item);
                    }
                }
                self.members[sender].merge();
                Ok(welcome.clone().map(|w| (w, ratchet_tree.clone())))
            }
            Err(e) => {
                self.members[sender].discard();
                Err(e)
            }
        }
    }

    /// `joiner`'s external commit (`bundle`) goes to the hub; on acceptance every member
    /// processes it and the joiner (already at the new epoch) becomes a member.
    pub fn join_external(
        &mut self,
        joiner: Member,
        bundle: HandshakeBundle,
    ) -> Result<(), UpdateRejection> {
        self.members.push(joiner);
        let sender = self.members.len() - 1;
        let bundle = HandshakeBundle::decode(&bundle.encode()).unwrap();
        if let Err(e) = self.hub.handle_update(&bundle) {
            self.members.pop();
            return Err(e);
        }
        let HandshakeBundle::Commit { commit, .. } = &bundle else {
            panic!("not a commit")
        };
        let item = FanoutMessage {
            timestamp: 1,
            message: commit.clone(),
            extra: FanoutExtra::Commit(vec![]),
        };
        for m in &mut self.members[..sender] {
            m.process_handshake(&item);
        }
        Ok(())
    }

    /// Every member sends one message; every other member decrypts it.
    pub fn everyone_sends(&mut self, tag: &str) {
        for s in 0..self.members.len() {
            let content = format!("{tag} from {}", self.members[s].client()).into_bytes();
            let msg = self.members[s].send(&content);
            let from = self.members[s].client();
            for (i, m) in self.members.iter_mut().enumerate() {
                if i != s {
                    let (sender, got) = m.receive(&msg);
                    assert_eq!(sender, from, "{}: sender", m.client());
                    assert_eq!(got, content, "{}: plaintext", m.client());
                }
            }
        }
    }

    /// Removes departed members (the hub no longer lists them).
    pub fn drop_removed(&mut self) {
        let clients = self.hub.clients();
        self.members.retain(|m| clients.contains(&m.client()));
    }
}

/// A bare Welcome as the MLSMessage openmls devices join from.
pub fn welcome_message(
    w: &mimi_wire::Mls<openmls::prelude::Welcome>,
) -> mimi_wire::Mls<openmls::prelude::MlsMessageIn> {
    let mut b = vec![0, 1, 0, 3];
    b.extend_from_slice(w.as_bytes());
    mimi_wire::Mls::from_bytes(b).unwrap()
}
