//! The scripted devices: each a `mimi-client` profile (the CLI's own device, state in its own
//! SQLite file) driven by a task of its own. A device waits on its home node's queue with a
//! long-poll of its own connection and syncs when something arrives, and between polls does
//! what the runner tells it: send a message of some kind, add or remove users, leave, join.
//! Everything it sees goes to the [`Log`].

use crate::log::{Event, Log};
use crate::relay::Rng;
use crate::scenario::Kind;
use anyhow::{Result, anyhow};
use bytes::Bytes;
use http::Method;
use mimi_client::device::{Client, HomeNode, RoomInfo};
use mimi_content::{MessageId, MimiContent, NestedPart};
use mimi_wire::id::{RoomUri, UserUri};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What a device's view of a room is, for the agreement check.
#[derive(Clone, Debug, serde::Serialize)]
pub struct View {
    pub info: RoomInfo,
    /// Message ID → what must be alike on every device that has it.
    pub messages: BTreeMap<String, serde_json::Value>,
}

/// What the runner asks a device to do.
pub enum Cmd {
    Send {
        room: RoomUri,
        kind: Kind,
        seq: u64,
    },
    Create {
        name: String,
        done: oneshot::Sender<Result<RoomUri>>,
    },
    Add {
        room: RoomUri,
        users: Vec<UserUri>,
        done: oneshot::Sender<Result<u64>>,
    },
    Remove {
        room: RoomUri,
        user: UserUri,
        done: oneshot::Sender<Result<u64>>,
    },
    Leave {
        room: RoomUri,
        done: oneshot::Sender<Result<()>>,
    },
    CommitPending {
        room: RoomUri,
        done: oneshot::Sender<Result<Option<u64>>>,
    },
    Join {
        room: RoomUri,
        done: oneshot::Sender<Result<u64>>,
    },
    Sync {
        done: oneshot::Sender<Result<()>>,
    },
    /// Make a single-use join link (valid for an hour).
    MakeLink {
        room: RoomUri,
        done: oneshot::Sender<Result<String>>,
    },
    /// Join with a link's code.
    JoinLink {
        link: String,
        done: oneshot::Sender<Result<u64>>,
    },
    /// Delete another device of this user and remove it from its rooms: (room, epoch) each.
    RemoveDevice {
        client: mimi_wire::id::ClientUri,
        done: oneshot::Sender<Result<Vec<(String, u64)>>>,
    },
    /// This device was deleted: it is out of every room and does nothing more.
    Retire {
        done: oneshot::Sender<Result<()>>,
    },
    View {
        room: RoomUri,
        done: oneshot::Sender<Result<Option<View>>>,
    },
}

/// A device as the runner sees it.
#[derive(Clone)]
pub struct Agent {
    pub user_uri: UserUri,
    pub domain: String,
    pub client: String,
    tx: mpsc::Sender<Cmd>,
}

/// Recent messages of each room (targets for replies, reactions and receipts).
#[derive(Clone, Default)]
pub struct Recent(Arc<Mutex<BTreeMap<String, VecDeque<[u8; 32]>>>>);

impl Recent {
    fn add(&self, room: &str, id: [u8; 32]) {
        if let Ok(mut m) = self.0.lock() {
            let q = m.entry(room.to_owned()).or_default();
            q.push_back(id);
            if q.len() > 64 {
                q.pop_front();
            }
        }
    }

    fn pick(&self, room: &str, rng: &mut Rng) -> Option<[u8; 32]> {
        let m = self.0.lock().ok()?;
        let q = m.get(room)?;
        if q.is_empty() {
            return None;
        }
        q.get(rng.below(q.len() as u64) as usize).copied()
    }
}

impl Agent {
    /// Registers a device of `user` on `home` (its profile in `dir`; `token`: an earlier
    /// device's, for a second device of the same user) and starts its task.
    #[allow(clippy::too_many_arguments)]
    pub async fn register(
        id: usize,
        dir: PathBuf,
        home: HomeNode,
        user: &str,
        device: &str,
        token: Option<&str>,
        log: Log,
        recent: Recent,
        seed: u64,
    ) -> Result<(Self, String)> {
        let mut c = Client::register(&dir, home.clone(), user, device, Some(user), token)
            .await
            .map_err(|e| anyhow!("registering {user}/{device} on {}: {e}", home.domain))?;
        c.set_delivery_receipts(false).await?;
        c.publish_key_packages(6).await?;
        let token = c.token().await?;
        let user_uri = c.user().clone();
        let client = c.client().to_string();
        let peek = mimi_client::device::connect(&home)?;
        peek.set_token(&token);
        let (tx, rx) = mpsc::channel(4);
        let agent = Agent {
            user_uri,
            domain: home.domain.clone(),
            client,
            tx,
        };
        let task = Task {
            id,
            dir,
            c,
            peek,
            log,
            recent,
            rng: Rng::new(seed),
            own: VecDeque::new(),
            removed: BTreeSet::new(),
            retired: false,
        };
        tokio::spawn(task.run(rx));
        Ok((agent, token))
    }

    /// Queues a message; `false` when the device is busy (the queue of commands is full).
    pub fn send(&self, room: &RoomUri, kind: Kind, seq: u64) -> bool {
        self.tx
            .try_send(Cmd::Send {
                room: room.clone(),
                kind,
                seq,
            })
            .is_ok()
    }

    /// Runs a command and waits for its answer (bounded).
    pub async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Cmd,
        within: Duration,
    ) -> Result<T> {
        let (done, rx) = oneshot::channel();
        tokio::time::timeout(within, self.tx.send(make(done)))
            .await
            .map_err(|_| anyhow!("device {} is busy", self.client))?
            .map_err(|_| anyhow!("device {} has stopped", self.client))?;
        tokio::time::timeout(within, rx)
            .await
            .map_err(|_| anyhow!("device {} did not finish within {within:?}", self.client))?
            .map_err(|_| anyhow!("device {} has stopped", self.client))?
    }
}

struct Task {
    id: usize,
    /// The device's profile directory (attachments are written and read here).
    dir: PathBuf,
    c: Client,
    peek: mimi_net::client::ClientApi,
    log: Log,
    recent: Recent,
    rng: Rng,
    /// This device's own recent messages (to edit and delete).
    own: VecDeque<(String, [u8; 32], MimiContent)>,
    /// Rooms this device was removed from or left.
    removed: BTreeSet<String>,
    /// Deleted at its provider (`remove-device`).
    retired: bool,
}

/// Whether the home node has something after `cursor` (a long-poll that does not consume;
/// errors wait a little, so a dead node is not hammered).
async fn peek(api: &mimi_net::client::ClientApi, cursor: u64) -> bool {
    match api
        .request(
            Method::GET,
            &format!("queue?after={cursor}&wait=2000&limit=1"),
            Bytes::new(),
        )
        .await
    {
        Ok(r) if r.status.is_success() => serde_json::from_slice::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| v["items"].as_array().map(|a| !a.is_empty()))
            .unwrap_or(false),
        _ => {
            tokio::time::sleep(Duration::from_millis(250)).await;
            false
        }
    }
}

fn comparable(m: &mimi_content::view::MessageView) -> serde_json::Value {
    serde_json::json!({
        "sender": m.sender, "text": m.text, "edits": m.edits, "deleted": m.deleted,
        "in_reply_to": m.in_reply_to.map(|i| hex::encode(i.0)),
        "reactions": m.reactions.iter().map(|r| serde_json::json!([r.reaction, r.users])).collect::<Vec<_>>(),
    })
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        loop {
            let cursor = self.c.cursor();
            let cmd = tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    Some(c) => Some(c),
                    None => return,
                },
                more = peek(&self.peek, cursor) => {
                    if more {
                        self.sync().await;
                    }
                    None
                }
            };
            if let Some(cmd) = cmd {
                self.handle(cmd).await;
            }
            if self.retired {
                // Views of a deleted device are None from here on (`removed` holds every room).
                while let Some(cmd) = rx.recv().await {
                    self.handle_retired(cmd);
                }
                return;
            }
        }
    }

    /// What a deleted device answers: nothing to view, nothing to do.
    fn handle_retired(&mut self, cmd: Cmd) {
        let gone = || anyhow!("device {} was deleted", self.c.client());
        match cmd {
            Cmd::View { done, .. } => {
                let _ = done.send(Ok(None));
            }
            Cmd::Sync { done } | Cmd::Retire { done } => {
                let _ = done.send(Ok(()));
            }
            Cmd::Send { .. } => {}
            Cmd::Create { done, .. } => {
                let _ = done.send(Err(gone()));
            }
            Cmd::Add { done, .. } | Cmd::Remove { done, .. } | Cmd::Join { done, .. } => {
                let _ = done.send(Err(gone()));
            }
            Cmd::JoinLink { done, .. } => {
                let _ = done.send(Err(gone()));
            }
            Cmd::Leave { done, .. } => {
                let _ = done.send(Err(gone()));
            }
            Cmd::CommitPending { done, .. } => {
                let _ = done.send(Err(gone()));
            }
            Cmd::MakeLink { done, .. } => {
                let _ = done.send(Err(gone()));
            }
            Cmd::RemoveDevice { done, .. } => {
                let _ = done.send(Err(gone()));
            }
        }
    }

    async fn sync(&mut self) -> bool {
        match self.c.sync(0).await {
            Ok(r) => {
                // LAB-checks after-removal: the device itself counts what reached it while it
                // was not a member (a Welcome that adds it again is not counted).
                for (room, n) in &r.items_not_member {
                    self.log.push(Event::AfterRemoval {
                        device: self.id,
                        room: room.clone(),
                        items: *n,
                    });
                }
                for room in &r.joined {
                    let epoch = RoomUri::parse(room)
                        .ok()
                        .and_then(|u| self.c.info(&u).ok())
                        .map_or(0, |i| i.epoch);
                    self.removed.remove(room);
                    self.log.push(Event::Joined {
                        device: self.id,
                        room: room.clone(),
                        epoch,
                        how: "welcome".into(),
                    });
                }
                for (room, id) in r.messages {
                    if let Ok(b) = hex::decode(&id)
                        && let Ok(b) = <[u8; 32]>::try_from(b.as_slice())
                    {
                        self.recent.add(&room, b);
                    }
                    self.log.push(Event::Delivered {
                        device: self.id,
                        room,
                        id,
                    });
                }
                for (room, id) in r.attachments {
                    self.download(&room, &id).await;
                }
                for (room, id) in r.repeated {
                    self.log.push(Event::Repeated {
                        device: self.id,
                        room,
                        id,
                    });
                }
                for (room, epoch) in r.commits {
                    self.log.push(Event::Commit {
                        device: self.id,
                        room,
                        epoch,
                    });
                }
                for (room, reason) in r.skipped {
                    if reason == "this device was removed" {
                        let epoch = RoomUri::parse(&room)
                            .ok()
                            .and_then(|u| self.c.info(&u).ok())
                            .map_or(0, |i| i.epoch);
                        self.removed.insert(room.clone());
                        self.log.push(Event::Left {
                            device: self.id,
                            room,
                            epoch,
                        });
                    } else {
                        self.log.push(Event::Skipped {
                            device: self.id,
                            room,
                            reason,
                        });
                    }
                }
                true
            }
            Err(e) => {
                self.log.push(Event::SyncFailed {
                    device: self.id,
                    reason: e.to_string(),
                });
                false
            }
        }
    }

    /// LAB-attachments: a received message with an external part is downloaded through this
    /// device's provider (the client checks size, hash and tag) and the file deleted again.
    async fn download(&mut self, room: &str, id: &str) {
        let Ok(uri) = RoomUri::parse(room) else {
            return;
        };
        let out = self
            .dir
            .join(format!("download-{}", &id[..16.min(id.len())]));
        let _ = std::fs::remove_file(&out);
        let r = self.c.download(&uri, id, Some(&out), None).await;
        match r {
            Ok(path) => {
                let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                let _ = std::fs::remove_file(&path);
                self.log.push(Event::Downloaded {
                    device: self.id,
                    room: room.to_owned(),
                    id: id.to_owned(),
                    bytes,
                });
            }
            Err(e) => self.log.push(Event::DownloadFailed {
                device: self.id,
                room: room.to_owned(),
                id: id.to_owned(),
                reason: e.to_string(),
            }),
        }
    }

    /// Sends a small attachment (1 to 16 KiB of seeded bytes); its message ID.
    async fn send_attachment(&mut self, room: &RoomUri, seq: u64) -> Result<[u8; 32], String> {
        let len = 1024 + self.rng.below(15 * 1024) as usize;
        let mut data = Vec::with_capacity(len);
        while data.len() < len {
            data.extend_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        data.truncate(len);
        let path = self.dir.join(format!("attachment-{seq}.bin"));
        std::fs::write(&path, &data).map_err(|e| format!("writing {}: {e}", path.display()))?;
        let r = self
            .c
            .send_file(room, &path, &format!("attachment {seq}"))
            .await;
        let _ = std::fs::remove_file(&path);
        r.map(|(id, _)| id).map_err(|e| e.to_string())
    }

    fn content(&mut self, room: &RoomUri, kind: Kind, seq: u64) -> (Kind, MimiContent) {
        let salt = mimi_client::device::salt();
        let r = room.as_str();
        let own: Vec<usize> = (0..self.own.len())
            .filter(|i| self.own[*i].0 == r)
            .collect();
        match kind {
            Kind::Reply | Kind::Reaction | Kind::Receipt => {
                let Some(target) = self.recent.pick(r, &mut self.rng) else {
                    return (
                        Kind::Text,
                        MimiContent::text(salt, &format!("message {seq}")),
                    );
                };
                let target = MessageId(target);
                let c = match kind {
                    Kind::Reply => {
                        MimiContent::reply(salt, target, NestedPart::text(&format!("reply {seq}")))
                    }
                    Kind::Reaction => MimiContent::reaction(salt, target, "\u{1F44D}"),
                    _ => {
                        let report = mimi_content::status::MessageStatusReport {
                            statuses: vec![mimi_content::status::PerMessageStatus {
                                message_id: target,
                                status: mimi_content::status::MessageStatus::READ,
                            }],
                        };
                        mimi_content::build::ContentBuilder::new(
                            salt,
                            NestedPart::status_report(&report),
                        )
                        .build()
                    }
                };
                (kind, c)
            }
            Kind::Edit | Kind::Delete if !own.is_empty() => {
                let k = own[self.rng.below(own.len() as u64) as usize];
                let (_, id, target) = &self.own[k];
                let c = if kind == Kind::Edit {
                    MimiContent::edit(
                        salt,
                        MessageId(*id),
                        target,
                        NestedPart::text(&format!("edited {seq}")),
                    )
                } else {
                    MimiContent::delete(salt, MessageId(*id), target)
                };
                if kind == Kind::Delete {
                    self.own.remove(k);
                }
                (kind, c)
            }
            _ => (
                Kind::Text,
                MimiContent::text(salt, &format!("message {seq}")),
            ),
        }
    }

    async fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Send {
                room,
                kind: Kind::Attachment,
                seq,
            } => {
                let epoch = self.c.info(&room).map_or(0, |i| i.epoch);
                let submitted_ms = self.log.now_ms();
                match self.send_attachment(&room, seq).await {
                    Ok(id) => {
                        self.recent.add(room.as_str(), id);
                        self.log.push(Event::Sent {
                            submitted_ms,
                            device: self.id,
                            room: room.to_string(),
                            id: hex::encode(id),
                            kind: Kind::Attachment,
                            epoch,
                        });
                    }
                    Err(reason) => {
                        self.log.push(Event::SendFailed {
                            device: self.id,
                            room: room.to_string(),
                            kind: Kind::Attachment,
                            reason,
                        });
                        self.sync().await;
                    }
                }
            }
            Cmd::Send { room, kind, seq } => {
                let (kind, content) = self.content(&room, kind, seq);
                let epoch = self.c.info(&room).map_or(0, |i| i.epoch);
                let submitted_ms = self.log.now_ms();
                match self.c.send(&room, content.clone()).await {
                    Ok(id) => {
                        self.recent.add(room.as_str(), id);
                        if kind == Kind::Text {
                            self.own.push_back((room.to_string(), id, content));
                            if self.own.len() > 16 {
                                self.own.pop_front();
                            }
                        }
                        self.log.push(Event::Sent {
                            submitted_ms,
                            device: self.id,
                            room: room.to_string(),
                            id: hex::encode(id),
                            kind,
                            epoch,
                        });
                    }
                    Err(e) => {
                        self.log.push(Event::SendFailed {
                            device: self.id,
                            room: room.to_string(),
                            kind,
                            reason: e.to_string(),
                        });
                        // An old epoch: catch up before the next one.
                        self.sync().await;
                    }
                }
            }
            Cmd::Create { name, done } => {
                let r = self.c.create_room(&name, Some(&name), "private").await;
                if let Ok(room) = &r {
                    let epoch = self.c.info(room).map_or(0, |i| i.epoch);
                    self.log.push(Event::Joined {
                        device: self.id,
                        room: room.to_string(),
                        epoch,
                        how: "created".into(),
                    });
                }
                let _ = done.send(r.map_err(|e| anyhow!("{e}")));
            }
            Cmd::Add { room, users, done } => {
                let r = self.c.add(&room, &users, 2).await;
                let _ = done.send(r.map_err(|e| anyhow!("{e}")));
            }
            Cmd::Remove { room, user, done } => {
                let r = self.c.remove(&room, &user).await;
                let _ = done.send(r.map_err(|e| anyhow!("{e}")));
            }
            Cmd::Leave { room, done } => {
                let r = self.c.leave(&room).await;
                if r.is_ok() {
                    let epoch = self.c.info(&room).map_or(0, |i| i.epoch);
                    self.removed.insert(room.to_string());
                    self.log.push(Event::Left {
                        device: self.id,
                        room: room.to_string(),
                        epoch,
                    });
                }
                let _ = done.send(r.map_err(|e| anyhow!("{e}")));
            }
            Cmd::CommitPending { room, done } => {
                let r = self.c.commit_pending(&room).await;
                let _ = done.send(r.map_err(|e| anyhow!("{e}")));
            }
            Cmd::Join { room, done } => {
                let r = self.c.join_external(&room).await;
                if let Ok(epoch) = &r {
                    self.removed.remove(room.as_str());
                    self.log.push(Event::Joined {
                        device: self.id,
                        room: room.to_string(),
                        epoch: *epoch,
                        how: "external commit".into(),
                    });
                }
                let _ = done.send(r.map_err(|e| anyhow!("{e}")));
            }
            Cmd::MakeLink { room, done } => {
                let r = self.c.make_join_link(&room, false, 3600).await;
                let _ = done.send(r.map_err(|e| anyhow!("{e}")));
            }
            Cmd::JoinLink { link, done } => {
                let r = match mimi_client::device::parse_join_target(&link) {
                    Ok((room, Some(code))) => {
                        let r = self.c.join_with_code(&room, code).await;
                        if let Ok(epoch) = &r {
                            self.removed.remove(room.as_str());
                            self.log.push(Event::Joined {
                                device: self.id,
                                room: room.to_string(),
                                epoch: *epoch,
                                how: "join link".into(),
                            });
                        }
                        r.map_err(|e| anyhow!("{e}"))
                    }
                    Ok((_, None)) => Err(anyhow!("{link} has no join code")),
                    Err(e) => Err(anyhow!("{e}")),
                };
                let _ = done.send(r);
            }
            Cmd::RemoveDevice { client, done } => {
                let r = self.c.remove_device(&client).await;
                let r = match r {
                    Ok(d) if d.failed.is_empty() => Ok(d.removed),
                    Ok(d) => Err(anyhow!(
                        "the device is deleted but still in: {}",
                        d.failed
                            .iter()
                            .map(|(r, e)| format!("{r} ({e})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                    Err(e) => Err(anyhow!("{e}")),
                };
                let _ = done.send(r);
            }
            Cmd::Retire { done } => {
                for room in self.c.rooms() {
                    self.removed.insert(room.to_string());
                }
                let _ = done.send(Ok(()));
                // Its token is gone: the task ends (no more syncs, no views).
                self.retired = true;
            }
            Cmd::Sync { done } => {
                let ok = self.sync().await;
                let _ = done.send(if ok {
                    Ok(())
                } else {
                    Err(anyhow!("sync failed"))
                });
            }
            Cmd::View { room, done } => {
                let r = self.view(&room).await;
                let _ = done.send(r);
            }
        }
    }

    async fn view(&mut self, room: &RoomUri) -> Result<Option<View>> {
        if self.removed.contains(room.as_str()) || !self.c.rooms().contains(room) {
            return Ok(None);
        }
        let info = self.c.info(room)?;
        let messages = self
            .c
            .history(room)
            .await?
            .iter()
            .map(|m| (hex::encode(m.id.0), comparable(m)))
            .collect();
        Ok(Some(View { info, messages }))
    }
}
