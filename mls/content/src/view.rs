//! A room's message history resolved into what a person sees (content-08 §4.2, §5): edits
//! applied, deletions shown, reactions counted per target, replies linked, expiry honoured, and
//! delivery/read status per message.

use crate::model::{Disposition, MessageId, MimiContent, PartBody};
use crate::status::{MEDIA_TYPE, MessageStatus, MessageStatusReport};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A message as received: its ID, who sent it (user URI, from the MLS credential), the hub's
/// accepted timestamp, and the decoded content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The message ID.
    pub id: MessageId,
    /// The sending user's URI.
    pub sender: String,
    /// The hub accepted timestamp, milliseconds since the UNIX epoch.
    pub timestamp_ms: u64,
    /// The content.
    pub content: MimiContent,
}

/// Why a message was not taken into the history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// The same message ID twice (content-08 §9.1: log and discard).
    #[error("duplicate message ID {0} (content-08 §9.1)")]
    DuplicateId(MessageId),
    /// A status report whose body does not decode.
    #[error("status report from {sender} does not decode: {reason}")]
    BadStatusReport {
        /// Its sender.
        sender: String,
        /// The decode error.
        reason: String,
    },
}

/// One reaction and who gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionCount {
    /// The reaction (usually one emoji).
    pub reaction: String,
    /// Users who gave it, in the order they did.
    pub users: Vec<String>,
}

/// One message as a person sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageView {
    /// ID of the first version.
    pub id: MessageId,
    /// Sender's user URI.
    pub sender: String,
    /// Hub accepted timestamp of the first version.
    pub timestamp_ms: u64,
    /// The current text; `None` once deleted.
    pub text: Option<String>,
    /// How many accepted edits were applied.
    pub edits: usize,
    /// Deleted (retracted) by its sender.
    pub deleted: bool,
    /// Past its expiry for the viewer.
    pub expired: bool,
    /// Its expiry (content-08 `expires`), if it has one.
    pub expires: Option<crate::model::Expiration>,
    /// The message this replies to, if any.
    pub in_reply_to: Option<MessageId>,
    /// Topic, if any.
    pub topic_id: Vec<u8>,
    /// Reactions, in the order they were first given.
    pub reactions: Vec<ReactionCount>,
    /// Users mentioned in the current text.
    pub mentions: Vec<String>,
    /// Latest status reported by each other user (delivered, read, ...).
    pub statuses: BTreeMap<String, MessageStatus>,
}

/// A message's status as reported by one user, with the time of the report.
type StatusEntry = (MessageStatus, u64);

/// The history of one room.
#[derive(Clone, Debug, Default)]
pub struct History {
    messages: HashMap<MessageId, Received>,
    /// message -> reporter -> (status, report timestamp)
    statuses: HashMap<MessageId, HashMap<String, StatusEntry>>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many messages (of any kind) it holds.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether it holds no message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Takes in a received message, in any order. Status reports (a single part of type
    /// `application/mimi-message-status`) update statuses instead of appearing as messages.
    pub fn insert(&mut self, m: Received) -> Result<(), HistoryError> {
        // CONTENT-9.1-duplicate-id
        if self.messages.contains_key(&m.id) {
            return Err(HistoryError::DuplicateId(m.id));
        }
        if let PartBody::Single {
            content_type,
            content,
        } = &m.content.nested_part.body
            && content_type == MEDIA_TYPE
        {
            let report = MessageStatusReport::decode(content).map_err(|e| {
                HistoryError::BadStatusReport {
                    sender: m.sender.clone(),
                    reason: e.to_string(),
                }
            })?;
            for s in report.statuses {
                let entry = self.statuses.entry(s.message_id).or_default();
                let newer = entry
                    .get(&m.sender)
                    .is_none_or(|(_, at)| *at <= m.timestamp_ms);
                if newer {
                    entry.insert(m.sender.clone(), (s.status, m.timestamp_ms));
                }
            }
        }
        self.messages.insert(m.id, m);
        Ok(())
    }

    /// The message with this ID, as received.
    pub fn get(&self, id: &MessageId) -> Option<&Received> {
        self.messages.get(id)
    }

    /// Follows `inReplyTo` from `id` up to the thread's root, stopping at unknown targets and
    /// at loops (`CONTENT-4.1-reply-loop`: receivers must check the chain for loops).
    pub fn reply_chain(&self, id: &MessageId) -> Vec<MessageId> {
        let mut chain = vec![*id];
        let mut seen: HashSet<MessageId> = HashSet::from([*id]);
        let mut cur = *id;
        while let Some(next) = self.messages.get(&cur).and_then(|m| m.content.in_reply_to) {
            if !seen.insert(next) || !self.messages.contains_key(&next) {
                break;
            }
            chain.push(next);
            cur = next;
        }
        chain
    }

    /// The room as `viewer` sees it at `now_ms`, ordered by hub timestamp and then by the
    /// lexically lowest message ID (content-08 §4.2).
    pub fn view(&self, now_ms: u64, viewer: Option<&str>) -> Vec<MessageView> {
        let mut ordered: Vec<&Received> = self.messages.values().collect();
        ordered.sort_by_key(|a| (a.timestamp_ms, a.id));

        let mut shown: Vec<MessageView> = Vec::new();
        let mut index: HashMap<MessageId, usize> = HashMap::new();
        let mut reactions: Vec<&Received> = Vec::new();
        let mut replacements: Vec<&Received> = Vec::new();
        for m in &ordered {
            let c = &m.content;
            if is_status_report(c) {
                continue;
            }
            if c.replaces.is_some() {
                replacements.push(m);
            } else if c.nested_part.disposition == Disposition::REACTION && c.in_reply_to.is_some()
            {
                reactions.push(m);
            } else {
                index.insert(m.id, shown.len());
                shown.push(self.first_version(m));
            }
        }

        // Edits, deletions and unlikes, in order; only the original sender may make them
        // (CONTENT-9.3-edit-auth), and a deletion is final.
        let mut retracted: HashSet<MessageId> = HashSet::new();
        for m in replacements {
            let Some(target_id) = m.content.replaces else {
                continue;
            };
            let Some(target) = self.messages.get(&target_id) else {
                continue;
            };
            if target.sender != m.sender || target.content.replaces.is_some() {
                continue;
            }
            let is_null = m.content.nested_part.is_null();
            if let Some(&i) = index.get(&target_id) {
                let v = &mut shown[i];
                if v.deleted {
                    continue;
                }
                if is_null {
                    v.deleted = true;
                    v.text = None;
                    v.mentions.clear();
                } else {
                    v.edits += 1;
                    v.text = m.content.nested_part.display_text();
                    v.mentions = m.content.nested_part.mentions();
                }
            } else if is_null {
                // CONTENT-4.1-unlike: retracting a reaction message.
                retracted.insert(target_id);
            }
        }

        for r in reactions {
            if retracted.contains(&r.id) {
                continue;
            }
            let Some(&i) = r.content.in_reply_to.as_ref().and_then(|t| index.get(t)) else {
                continue;
            };
            for reaction in r.content.nested_part.reactions() {
                let list = &mut shown[i].reactions;
                match list.iter_mut().find(|rc| rc.reaction == reaction) {
                    Some(rc) if !rc.users.contains(&r.sender) => rc.users.push(r.sender.clone()),
                    Some(_) => {}
                    None => list.push(ReactionCount {
                        reaction,
                        users: vec![r.sender.clone()],
                    }),
                }
            }
        }

        for v in &mut shown {
            if let Some(m) = self.messages.get(&v.id) {
                v.expired = self.is_expired(m, now_ms, viewer);
            }
        }
        shown
    }

    fn first_version(&self, m: &Received) -> MessageView {
        let statuses = self
            .statuses
            .get(&m.id)
            .map(|s| {
                s.iter()
                    .filter(|(u, _)| **u != m.sender)
                    .map(|(u, (st, _))| (u.clone(), *st))
                    .collect()
            })
            .unwrap_or_default();
        MessageView {
            id: m.id,
            sender: m.sender.clone(),
            timestamp_ms: m.timestamp_ms,
            text: m.content.nested_part.display_text(),
            edits: 0,
            deleted: m.content.nested_part.is_null(),
            expired: false,
            expires: m.content.expires,
            in_reply_to: m.content.in_reply_to,
            topic_id: m.content.topic_id.clone(),
            reactions: Vec::new(),
            mentions: m.content.nested_part.mentions(),
            statuses,
        }
    }

    /// Absolute expiry compares with `now`; relative expiry counts from the viewer's own
    /// `read` report of the message (content-08 §5.8).
    fn is_expired(&self, m: &Received, now_ms: u64, viewer: Option<&str>) -> bool {
        let Some(exp) = m.content.expires else {
            return false;
        };
        let secs = u64::from(exp.time) * 1000;
        if !exp.relative {
            return secs <= now_ms;
        }
        let read_at = viewer
            .and_then(|v| self.statuses.get(&m.id)?.get(v))
            .and_then(|(st, at)| (*st == MessageStatus::READ).then_some(*at));
        read_at.is_some_and(|at| at.saturating_add(secs) <= now_ms)
    }
}

fn is_status_report(c: &MimiContent) -> bool {
    matches!(&c.nested_part.body, PartBody::Single { content_type, .. } if content_type == MEDIA_TYPE)
}
