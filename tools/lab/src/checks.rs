//! Convergence checks over the log and the devices' views: nothing accepted was lost or
//! delivered twice, every device received a room's messages in the hub's order, removed
//! devices got nothing after their removal, and every device of a room sees it alike (epoch,
//! epoch authenticator, participants, devices, and every message they both have).

use crate::agents::View;
use crate::log::{Event, Record};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One failed check, with the messages or devices it concerns.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// `lost`, `duplicate`, `order`, `after-removal`, `agreement`.
    pub check: String,
    pub room: String,
    /// What went wrong, naming message IDs (12 hex digits) and devices.
    pub what: String,
    /// The message IDs concerned (full hex).
    pub ids: Vec<String>,
}

/// Membership intervals `[from, until)` of epochs, by (device, room).
type Intervals = HashMap<(usize, String), Vec<(u64, Option<u64>)>>;

fn intervals(log: &[Record]) -> Intervals {
    let mut m: Intervals = HashMap::new();
    for r in log {
        match &r.event {
            Event::Joined {
                device,
                room,
                epoch,
                ..
            } => m
                .entry((*device, room.clone()))
                .or_default()
                .push((*epoch, None)),
            Event::Left {
                device,
                room,
                epoch,
            } => {
                if let Some(last) = m
                    .get_mut(&(*device, room.clone()))
                    .and_then(|v| v.last_mut())
                    && last.1.is_none()
                {
                    last.1 = Some((*epoch).max(last.0));
                }
            }
            _ => {}
        }
    }
    m
}

fn member_at(iv: &Intervals, device: usize, room: &str, epoch: u64) -> bool {
    iv.get(&(device, room.to_owned())).is_some_and(|v| {
        v.iter()
            .any(|(from, until)| *from <= epoch && until.is_none_or(|u| epoch < u))
    })
}

/// Whether `device` is a member of `room` now.
pub fn member_now(log: &[Record], device: usize, room: &str) -> bool {
    intervals(log)
        .get(&(device, room.to_owned()))
        .and_then(|v| v.last())
        .is_some_and(|(_, until)| until.is_none())
}

/// Expected deliveries not seen yet: (room, message ID, device).
pub fn missing(log: &[Record], devices: &[usize]) -> Vec<(String, String, usize, f64)> {
    let iv = intervals(log);
    let mut got: HashMap<(usize, &str), ()> = HashMap::new();
    let mut deleted: Vec<usize> = Vec::new();
    for r in log {
        match &r.event {
            Event::Delivered { device, id, .. } => {
                got.insert((*device, id.as_str()), ());
            }
            Event::Deleted { device } => deleted.push(*device),
            _ => {}
        }
    }
    let mut v = Vec::new();
    for r in log {
        if let Event::Sent {
            device: s,
            room,
            id,
            epoch,
            submitted_ms,
            ..
        } = &r.event
        {
            for d in devices {
                if d != s
                    && !deleted.contains(d)
                    && member_at(&iv, *d, room, *epoch)
                    && !got.contains_key(&(*d, id.as_str()))
                {
                    v.push((room.clone(), id.clone(), *d, *submitted_ms));
                }
            }
        }
    }
    v
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Every check over the log; `views`: each room's current members' views.
pub fn run(
    log: &[Record],
    devices: &[usize],
    names: &dyn Fn(usize) -> String,
    views: &BTreeMap<String, Vec<(usize, View)>>,
) -> Vec<Failure> {
    let mut out = Vec::new();
    // Lost.
    let mut lost: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (room, id, d, _) in missing(log, devices) {
        lost.entry((room, id)).or_default().push(d);
    }
    for ((room, id), ds) in lost {
        let who: Vec<String> = ds.iter().take(5).map(|d| names(*d)).collect();
        let more = if ds.len() > 5 {
            format!(" and {} more", ds.len() - 5)
        } else {
            String::new()
        };
        out.push(Failure {
            check: "lost".into(),
            room,
            what: format!(
                "message {} was accepted by the hub but never reached {}{more}",
                short(&id),
                who.join(", ")
            ),
            ids: vec![id],
        });
    }
    // Duplicates.
    let mut dup: BTreeMap<(String, String), BTreeSet<usize>> = BTreeMap::new();
    for r in log {
        if let Event::Repeated { device, room, id } = &r.event {
            dup.entry((room.clone(), id.clone()))
                .or_default()
                .insert(*device);
        }
    }
    for ((room, id), ds) in dup {
        let who: Vec<String> = ds.iter().take(5).map(|d| names(*d)).collect();
        out.push(Failure {
            check: "duplicate".into(),
            room,
            what: format!(
                "message {} was delivered twice to {}",
                short(&id),
                who.join(", ")
            ),
            ids: vec![id],
        });
    }
    // Order: every device's order of a room's messages agrees with the one that received the
    // most (all devices receive the hub's fanout order).
    let mut seqs: BTreeMap<String, BTreeMap<usize, Vec<&str>>> = BTreeMap::new();
    for r in log {
        if let Event::Delivered { device, room, id } = &r.event {
            seqs.entry(room.clone())
                .or_default()
                .entry(*device)
                .or_default()
                .push(id.as_str());
        }
    }
    for (room, by_dev) in &seqs {
        let Some((rd, reference)) = by_dev.iter().max_by_key(|(_, v)| v.len()) else {
            continue;
        };
        let pos: HashMap<&str, usize> = reference
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i))
            .collect();
        for (d, seq) in by_dev {
            let mut last: Option<(&str, usize)> = None;
            for id in seq {
                let Some(p) = pos.get(id) else { continue };
                if let Some((prev, lp)) = last
                    && *p < lp
                {
                    out.push(Failure {
                        check: "order".into(),
                        room: room.clone(),
                        what: format!(
                            "{} received {} after {}, {} the other way round",
                            names(*d),
                            short(id),
                            short(prev),
                            names(*rd)
                        ),
                        ids: vec![prev.to_owned(), (*id).to_owned()],
                    });
                    break;
                }
                last = Some((id, *p));
            }
        }
    }
    // Removed devices.
    let mut after: BTreeMap<(String, usize), usize> = BTreeMap::new();
    for r in log {
        if let Event::AfterRemoval {
            device,
            room,
            items,
        } = &r.event
        {
            *after.entry((room.clone(), *device)).or_default() += items;
        }
    }
    for ((room, d), n) in after {
        out.push(Failure {
            check: "after-removal".into(),
            room,
            what: format!(
                "{} received {n} item(s) of the room after it was removed",
                names(d)
            ),
            ids: Vec::new(),
        });
    }
    // LAB-attachments: every attachment a device received downloads and checks.
    for r in log {
        if let Event::DownloadFailed {
            device,
            room,
            id,
            reason,
        } = &r.event
        {
            out.push(Failure {
                check: "attachments".into(),
                room: room.clone(),
                what: format!(
                    "{} could not download the attachment of {}: {reason}",
                    names(*device),
                    short(id)
                ),
                ids: vec![id.clone()],
            });
        }
    }
    // Agreement.
    for (room, vs) in views {
        out.extend(agreement(room, vs, names));
    }
    out
}

/// Whether the views of one room agree; the differences.
pub fn agreement(
    room: &str,
    vs: &[(usize, View)],
    names: &dyn Fn(usize) -> String,
) -> Vec<Failure> {
    let mut out = Vec::new();
    let Some((d0, v0)) = vs.first() else {
        return out;
    };
    for (d, v) in &vs[1..] {
        let mut diffs = Vec::new();
        if v.info.epoch != v0.info.epoch {
            diffs.push(format!("epoch {} vs {}", v.info.epoch, v0.info.epoch));
        } else if v.info.epoch_authenticator != v0.info.epoch_authenticator {
            diffs.push("the epoch authenticators differ".into());
        }
        if v.info.participants != v0.info.participants {
            diffs.push("the participant lists differ".into());
        }
        if v.info.clients != v0.info.clients {
            diffs.push(format!(
                "the device lists differ ({} vs {} devices)",
                v.info.clients.len(),
                v0.info.clients.len()
            ));
        }
        let mut ids = Vec::new();
        for (id, m) in &v.messages {
            if let Some(m0) = v0.messages.get(id)
                && m != m0
            {
                ids.push(id.clone());
            }
        }
        if !ids.is_empty() {
            diffs.push(format!(
                "{} message(s) look different: {}",
                ids.len(),
                ids.iter()
                    .take(5)
                    .map(|i| short(i))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !diffs.is_empty() {
            out.push(Failure {
                check: "agreement".into(),
                room: room.to_owned(),
                what: format!(
                    "{} and {} disagree: {}",
                    names(*d),
                    names(*d0),
                    diffs.join("; ")
                ),
                ids,
            });
        }
    }
    out
}
