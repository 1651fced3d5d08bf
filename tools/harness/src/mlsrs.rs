//! A test device on mls-rs (mimi-room-mlsrs), the counterpart of [`crate::Person`]: for
//! rooms whose devices run two MLS implementations (issue 18, `INTEROP-mixed-federation`).

use crate::{
    ack_queue, fetch_queue, post_key_material, post_submit, post_update, publish_key_packages,
    register_device,
};
use mimi_content::MimiContent;
use mimi_net::client::ClientApi;
use mimi_room::franking::FrankCheck;
use mimi_room_mlsrs::device::{Device as RsDevice, Event as RsEvent, Room as RsRoom};
use mimi_wire::codec::Body;
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::id::{ClientUri, RoomUri, UserUri};
use mimi_wire::key_material::KeyMaterialResponse;
use mimi_wire::submit::{SubmitMessageRequest, SubmitOutcome};
use mimi_wire::update::{HandshakeBundle, UpdateOutcome};
use std::collections::HashMap;

/// A test device on mls-rs: MLS state in memory, talks to its home node's client API only
/// (what [`Person`] is for openmls devices).
pub struct RsPerson {
    pub dev: RsDevice,
    pub api: ClientApi,
    pub token: String,
    pub rooms: HashMap<RoomUri, RsRoom>,
    pub cursor: u64,
    pub seen: Vec<RsEvent>,
    /// Fanout items that arrived for a room this device is not in (must stay 0).
    pub after_removal: usize,
}

impl RsPerson {
    /// Registers through `api` (a further device of an existing user needs `token`, one of
    /// its devices') and publishes two mls-rs KeyPackages.
    pub async fn register_via(
        api: ClientApi,
        user: &str,
        device: &str,
        token: Option<&str>,
    ) -> Self {
        let (token, client) = register_device(&api, user, device, token).await;
        let dev = RsDevice::new(client).unwrap();
        // mls-rs KeyPackages, checked by the node with openmls (`PROTO-5.2-key-packages`).
        let kps: Vec<Vec<u8>> = (0..2).map(|_| dev.key_package().unwrap()).collect();
        publish_key_packages(&api, &kps).await;
        Self {
            dev,
            api,
            token,
            rooms: HashMap::new(),
            cursor: 0,
            seen: Vec::new(),
            after_removal: 0,
        }
    }

    /// The device's room (it must be in it).
    pub fn room(&mut self, room: &RoomUri) -> &mut RsRoom {
        self.rooms.get_mut(room).unwrap()
    }

    /// The device's epoch in `room` (0 when not in it).
    pub fn epoch(&self, room: &RoomUri) -> u64 {
        self.rooms.get(room).map_or(0, RsRoom::epoch)
    }

    /// Fetches and processes the queue until `done` holds (bounded: 100 long-polls).
    pub async fn sync_until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        for _ in 0..100 {
            if done(self) {
                return;
            }
            for item in &fetch_queue(&self.api, self.cursor).await {
                let room = RoomUri::parse(item["room"].as_str().unwrap()).unwrap();
                let body = hex::decode(item["body"].as_str().unwrap()).unwrap();
                let f = FanoutMessage::decode(&body).unwrap();
                if matches!(f.extra, FanoutExtra::Welcome(_)) {
                    let r = self.dev.join_from_item(&room, &f).unwrap();
                    self.seen.push(RsEvent::Commit { epoch: r.epoch() });
                    self.rooms.insert(room.clone(), r);
                } else if let Some(r) = self.rooms.get_mut(&room) {
                    let ev = r
                        .process_item(&f)
                        .unwrap_or_else(|e| panic!("{}: {e}", self.dev.client));
                    self.seen.push(ev);
                } else {
                    self.after_removal += 1;
                }
                self.cursor = item["seq"].as_u64().unwrap();
            }
            ack_queue(&self.api, self.cursor).await;
        }
        panic!("{}: {what} did not happen", self.dev.client);
    }

    /// Encrypts and submits `content`; the hub must accept it.
    pub async fn send(&mut self, room: &RoomUri, content: &MimiContent) {
        let bytes = self.room(room).send(&content.encode().unwrap()).unwrap();
        let req = SubmitMessageRequest {
            app_message: mimi_wire::Mls::from_bytes(bytes).unwrap(),
            sending_uri: mimi_wire::id::MimiUri::parse(self.dev.user.as_str()).unwrap(),
        };
        let outcome = post_submit(&self.api, room, &req).await;
        assert!(
            matches!(outcome, SubmitOutcome::Accepted { .. }),
            "{}: {outcome:?}",
            self.dev.client
        );
    }

    /// Sends a commit bundle through the home node; merges on success, discards otherwise.
    pub async fn update(&mut self, room: &RoomUri, bundle: &HandshakeBundle) -> UpdateOutcome {
        let outcome = post_update(&self.api, room, bundle).await;
        let r = self.room(room);
        if matches!(outcome, UpdateOutcome::Success { .. }) {
            r.merge().unwrap();
        } else {
            r.discard();
        }
        outcome
    }

    /// An external commit into `room` through the home node (groupInfo, then update) whose
    /// Remove is of `replaced`'s leaf (`RsDevice::join_external_replacing`): a resync when
    /// `replaced` is this client, a commit a hub must refuse otherwise (`ROOM-resync`). On
    /// success the device is in the room at the new epoch. Returns the bundle sent (None when
    /// groupInfo failed or the commit could not be built) and the outcome or the reason.
    pub async fn join_replacing(
        &mut self,
        room: &RoomUri,
        replaced: &ClientUri,
    ) -> (Option<HandshakeBundle>, Result<UpdateOutcome, String>) {
        let pending = match self.dev.group_info_request() {
            Ok(p) => p,
            Err(e) => return (None, Err(format!("groupInfo request: {e}"))),
        };
        let (st, b) = crate::call(
            &self.api,
            http::Method::POST,
            &format!("groupInfo/{}", crate::enc(room.as_str())),
            pending.request.encode(),
        )
        .await;
        if st != http::StatusCode::OK {
            return (
                None,
                Err(format!("groupInfo: {st} {}", String::from_utf8_lossy(&b))),
            );
        }
        let opened = mimi_wire::group_info::GroupInfoResponse::decode(&b)
            .map_err(|e| e.to_string())
            .and_then(|resp| {
                self.dev
                    .open_group_info(room, &pending, &resp)
                    .map_err(|e| e.to_string())
            });
        let (gi, tree, proposals) = match opened {
            Ok(o) => o,
            Err(e) => return (None, Err(format!("groupInfo: {e}"))),
        };
        let (r, bundle) = match self
            .dev
            .join_external_replacing(room, &gi, &tree, &proposals, replaced)
        {
            Ok(j) => j,
            Err(e) => return (None, Err(format!("external commit: {e}"))),
        };
        let outcome = post_update(&self.api, room, &bundle).await;
        if matches!(outcome, UpdateOutcome::Success { .. }) {
            self.rooms.insert(room.clone(), r);
        } else if !self.rooms.contains_key(room) {
            self.dev.delete_room(room);
        }
        (Some(bundle), Ok(outcome))
    }

    /// Claims `target`'s KeyPackages through the home node with a request this mls-rs device
    /// signed (`PROTO-5.2-key-material`).
    pub async fn claim(&self, room: &RoomUri, target: &UserUri) -> KeyMaterialResponse {
        let req = self.dev.key_material_request(room, target).unwrap();
        post_key_material(&self.api, target, &req).await
    }

    pub fn contents(&self) -> Vec<(ClientUri, Vec<u8>, FrankCheck)> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                RsEvent::Message {
                    sender,
                    content,
                    frank,
                } => Some((sender.clone().unwrap(), content.clone(), frank.clone())),
                _ => None,
            })
            .collect()
    }
}
