//! A JSON description of every body: the field names of the draft and their values, MLS
//! objects and opaque fields as lower-case hex. Used by the published test vectors
//! (`interop-tests/vectors/protocol/`) and by tools that show what was on the wire.

use crate::abuse::AbuseReport;
use crate::common::{AppDataDictionary, Frank, GroupInfoOption, HpkeCiphertext, RatchetTreeOption};
use crate::consent::{ConsentEntry, ConsentOperation, ConsentScope};
use crate::fanout::{FanoutExtra, FanoutMessage};
use crate::group_info::{GroupInfoRatchetTreeTbe, GroupInfoRequest, GroupInfoResponse};
use crate::identifier::{IdentifierRequest, IdentifierResponse};
use crate::key_material::{ClientMaterial, KeyMaterialRequest, KeyMaterialResponse};
use crate::submit::{SubmitMessageRequest, SubmitMessageResponse, SubmitOutcome};
use crate::update::{HandshakeBundle, UpdateOutcome, UpdateRoomResponse};
use serde_json::{Value, json};

/// A body's fields as JSON.
pub trait ToJson {
    /// The description.
    fn to_json(&self) -> Value;
}

fn h(b: &[u8]) -> Value {
    Value::String(hex::encode(b))
}

fn dict(d: &AppDataDictionary) -> Value {
    Value::Array(
        d.entries
            .iter()
            .map(|(id, data)| json!({"component_id": id, "data": hex::encode(data)}))
            .collect(),
    )
}

fn frank(f: &Frank) -> Value {
    json!({
        "server_frank": h(&f.server_frank),
        "franking_signature_ciphersuite": f.franking_signature_ciphersuite.0,
        "franking_integrity_signature": h(&f.franking_integrity_signature),
    })
}

fn tree(t: &RatchetTreeOption) -> Value {
    match t {
        RatchetTreeOption::Full(tree) => {
            json!({"representation": "full", "ratchet_tree": h(tree.as_bytes())})
        }
        RatchetTreeOption::HttpsUri {
            url,
            tree_signature,
        } => json!({
            "representation": "httpsUri", "ratchet_tree_url": url, "tree_signature": h(tree_signature)}),
        RatchetTreeOption::OutOfBand { tree_signature } => {
            json!({"representation": "outOfBand", "tree_signature": h(tree_signature)})
        }
        RatchetTreeOption::DistributionService => json!({"representation": "distributionService"}),
    }
}

fn group_info_option(g: &GroupInfoOption) -> Value {
    match g {
        GroupInfoOption::Full(gi) => {
            json!({"representation": "full", "groupInfo": h(gi.as_bytes())})
        }
        GroupInfoOption::Partial(p) => json!({
            "representation": "partial",
            "ratchet_tree_presence": p.ratchet_tree_presence,
            "group_info_extensions": h(&p.group_info_extensions),
            "signature": h(&p.signature),
        }),
    }
}

fn hpke(c: &HpkeCiphertext) -> Value {
    json!({"kem_output": h(&c.kem_output), "ciphertext": h(&c.ciphertext)})
}

fn msgs(v: &[crate::Mls<openmls::prelude::MlsMessageIn>]) -> Value {
    Value::Array(v.iter().map(|m| h(m.as_bytes())).collect())
}

impl ToJson for KeyMaterialRequest {
    fn to_json(&self) -> Value {
        let t = &self.tbs;
        json!({
            "protocol": 1,
            "requestingUser": t.requesting_user.as_str(),
            "targetUser": t.target_user.as_str(),
            "roomId": t.room_id.as_str(),
            "acceptableCiphersuites": t.acceptable_ciphersuites.iter().map(|c| c.0).collect::<Vec<_>>(),
            "requiredCapabilities": h(t.required_capabilities.as_bytes()),
            "requesterSignatureKey": h(&t.requester_signature_key),
            "requesterCredential": h(t.requester_credential.as_bytes()),
            "key_material_request_signature": h(&self.signature),
        })
    }
}

impl ToJson for KeyMaterialResponse {
    fn to_json(&self) -> Value {
        json!({
            "protocol": 1,
            "userStatus": self.user_status.name().map_or(Value::from(self.user_status.0), Value::from),
            "userUri": self.user_uri.as_str(),
            "clients": self.clients.iter().map(|c| {
                let (status, extra) = match &c.material {
                    ClientMaterial::KeyPackage(kp) => ("success".into(), json!({"keyPackage": h(kp.as_bytes())})),
                    ClientMaterial::Exhausted => ("keyMaterialExhausted".into(), json!({})),
                    ClientMaterial::NothingCompatible(cap) => ("nothingCompatible".into(), json!({
                        "clientCapabilities": cap.as_ref().map(|c| h(c.as_bytes()))})),
                    ClientMaterial::Other(code) => (Value::from(code.0), json!({})),
                };
                let mut o = json!({"clientStatus": status, "clientUri": c.client_uri.as_str()});
                if let (Some(o), Value::Object(e)) = (o.as_object_mut(), extra) {
                    o.extend(e);
                }
                o
            }).collect::<Vec<_>>(),
        })
    }
}

impl ToJson for HandshakeBundle {
    fn to_json(&self) -> Value {
        match self {
            HandshakeBundle::Commit {
                commit,
                welcome,
                group_info,
                ratchet_tree,
            } => json!({
                "proposalOrCommit": h(commit.as_bytes()),
                "content_type": "commit",
                "welcome": welcome.as_ref().map(|w| h(w.as_bytes())),
                "groupInfoOption": group_info_option(group_info),
                "ratchetTreeOption": tree(ratchet_tree),
            }),
            HandshakeBundle::Proposal {
                proposal,
                more_proposals,
            } => json!({
                "proposalOrCommit": h(proposal.as_bytes()),
                "content_type": "proposal",
                "moreProposals": msgs(more_proposals),
            }),
        }
    }
}

impl ToJson for UpdateRoomResponse {
    fn to_json(&self) -> Value {
        let code = self.code();
        let mut o = json!({
            "responseCode": code.name().map_or(Value::from(code.0), Value::from),
            "errorDescription": self.error_description,
        });
        let extra = match &self.outcome {
            UpdateOutcome::Success { accepted_timestamp } => {
                json!({"accepted_timestamp": accepted_timestamp})
            }
            UpdateOutcome::WrongEpoch { current_epoch } => json!({"currentEpoch": current_epoch}),
            UpdateOutcome::InvalidProposal { invalid_proposals } => json!({
                "invalidProposals": invalid_proposals.iter().map(|p| h(p)).collect::<Vec<_>>()}),
            UpdateOutcome::NotAllowed | UpdateOutcome::Other(_) => json!({}),
        };
        if let (Some(o), Value::Object(e)) = (o.as_object_mut(), extra) {
            o.extend(e);
        }
        o
    }
}

impl ToJson for SubmitMessageRequest {
    fn to_json(&self) -> Value {
        json!({"protocol": 1, "appMessage": h(self.app_message.as_bytes()), "sendingUri": self.sending_uri.as_str()})
    }
}

impl ToJson for SubmitMessageResponse {
    fn to_json(&self) -> Value {
        let code = self.code();
        let mut o = json!({"protocol": 1, "statusCode": code.name().map_or(Value::from(code.0), Value::from)});
        let extra = match &self.outcome {
            SubmitOutcome::Accepted {
                accepted_timestamp,
                frank: f,
            } => json!({
                "accepted_timestamp": accepted_timestamp, "frank": f.as_ref().map(frank)}),
            SubmitOutcome::EpochTooOld { current_epoch } => json!({"currentEpoch": current_epoch}),
            SubmitOutcome::NotAllowed | SubmitOutcome::Other(_) => json!({}),
        };
        if let (Some(o), Value::Object(e)) = (o.as_object_mut(), extra) {
            o.extend(e);
        }
        o
    }
}

impl ToJson for FanoutMessage {
    fn to_json(&self) -> Value {
        let mut o = json!({"timestamp": self.timestamp, "message": h(self.message.as_bytes())});
        let extra = match &self.extra {
            FanoutExtra::Application(f) => {
                json!({"case": "application", "frank": f.as_ref().map(frank)})
            }
            FanoutExtra::Welcome(t) => json!({"case": "welcome", "ratchetTreeOption": tree(t)}),
            FanoutExtra::Proposal(m) => json!({"case": "proposal", "moreProposals": msgs(m)}),
            FanoutExtra::Commit(m) => json!({"case": "commit", "externalProposals": msgs(m)}),
        };
        if let (Some(o), Value::Object(e)) = (o.as_object_mut(), extra) {
            o.extend(e);
        }
        o
    }
}

impl ToJson for GroupInfoRequest {
    fn to_json(&self) -> Value {
        let t = &self.tbs;
        json!({
            "protocol": 1,
            "cipher_suite": t.cipher_suite.0,
            "requestingSignatureKey": h(&t.requesting_signature_key),
            "requestingCredential": h(t.requesting_credential.as_bytes()),
            "groupInfoPublicKey": h(&t.group_info_public_key),
            "joiningCode": h(&t.joining_code),
            "signature": h(&self.signature),
        })
    }
}

impl ToJson for GroupInfoRatchetTreeTbe {
    fn to_json(&self) -> Value {
        json!({
            "groupInfo": h(self.group_info.as_bytes()),
            "ratchetTreeOption": tree(&self.ratchet_tree),
            "pending_proposals": self.pending_proposals.iter().map(|p| json!({
                "proposal": h(p.proposal.as_bytes()), "hub_accepted_time": p.hub_accepted_time})).collect::<Vec<_>>(),
        })
    }
}

impl ToJson for GroupInfoResponse {
    fn to_json(&self) -> Value {
        let mut o = json!({
            "version": 1,
            "room_id": self.room_id.as_str(),
            "status": self.status.name().map_or(Value::from(self.status.0), Value::from),
        });
        if let (Some(o), Some(s)) = (o.as_object_mut(), &self.success) {
            o.insert("cipher_suite".into(), s.cipher_suite.0.into());
            o.insert("hub_sender".into(), h(s.hub_sender.as_bytes()));
            o.insert(
                "encrypted_groupinfo_and_tree".into(),
                hpke(&s.encrypted_groupinfo_and_tree),
            );
            o.insert("signature".into(), h(&s.signature));
        }
        o
    }
}

fn scope(s: &ConsentScope) -> Value {
    json!({
        "requesterUri": s.requester_uri.as_str(),
        "targetUri": s.target_uri.as_str(),
        "roomId": s.room_id.as_ref().map(|r| r.as_str()),
    })
}

impl ToJson for ConsentScope {
    fn to_json(&self) -> Value {
        scope(self)
    }
}

impl ToJson for ConsentEntry {
    fn to_json(&self) -> Value {
        let op = match self.operation {
            ConsentOperation::Cancel => "cancel",
            ConsentOperation::Request => "request",
            ConsentOperation::Grant => "grant",
            ConsentOperation::Revoke => "revoke",
        };
        let mut o = json!({"consentOperation": op});
        if let (Some(o), Value::Object(s)) = (o.as_object_mut(), scope(&self.scope)) {
            o.extend(s);
            if self.operation == ConsentOperation::Grant {
                o.insert(
                    "clientKeyPackages".into(),
                    Value::Array(
                        self.client_key_packages
                            .iter()
                            .map(|k| h(k.as_bytes()))
                            .collect(),
                    ),
                );
            }
            o.insert("consent_extensions".into(), dict(&self.consent_extensions));
        }
        o
    }
}

impl ToJson for IdentifierRequest {
    fn to_json(&self) -> Value {
        json!({
            "query_elements": self.query_elements.iter().map(|q| json!({
                "searchType": q.search_type.0,
                "fieldName": h(&q.field_name),
                "searchValue": q.search_value,
            })).collect::<Vec<_>>(),
            "id_request_extensions": dict(&self.extensions),
        })
    }
}

impl ToJson for IdentifierResponse {
    fn to_json(&self) -> Value {
        json!({
            "responseCode": self.response_code.0,
            "uri": self.uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
            "foundProfiles": self.found_profiles.iter().map(|p| json!({
                "stableUri": p.stable_uri.as_str(),
                "fields": p.fields.iter().map(|f| json!({
                    "fieldSource": f.field_source, "fieldName": f.field_name, "fieldValue": h(&f.field_value)
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "id_response_extensions": dict(&self.extensions),
        })
    }
}

impl ToJson for AbuseReport {
    fn to_json(&self) -> Value {
        json!({
            "reportingUser": self.reporting_user.as_ref().map_or("", |u| u.as_str()),
            "allegedAbuserUri": self.alleged_abuser_uri.as_str(),
            "reasonCode": self.reason_code,
            "note": self.note,
            "messages": self.messages.iter().map(|m| json!({
                "message_content": h(&m.message_content),
                "frank": frank(&m.frank),
                "accepted_timestamp": m.accepted_timestamp,
            })).collect::<Vec<_>>(),
            "abuse_extensions": dict(&self.extensions),
        })
    }
}

use crate::components::{ParticipantListData, ParticipantListUpdate, RoomMetaData, UserRolePair};

fn pair(p: &UserRolePair) -> Value {
    json!({"user": p.user.as_str(), "role_index": p.role_index})
}

impl ToJson for ParticipantListData {
    fn to_json(&self) -> Value {
        json!({"participants": self.participants.iter().map(pair).collect::<Vec<_>>()})
    }
}

impl ToJson for ParticipantListUpdate {
    fn to_json(&self) -> Value {
        json!({
            "changedRoleParticipants": self.changed_role_participants.iter().map(|c| json!({
                "user_index": c.user_index, "role_index": c.role_index})).collect::<Vec<_>>(),
            "removedIndices": self.removed_indices,
            "addedParticipants": self.added_participants.iter().map(pair).collect::<Vec<_>>(),
        })
    }
}

impl ToJson for RoomMetaData {
    fn to_json(&self) -> Value {
        json!({
            "room_uri": self.room_uri.as_str(),
            "room_name": self.room_name,
            "room_descriptions": self.room_descriptions.iter().map(|d| json!({
                "media_type": d.media_type, "language_tag": d.language_tag,
                "description_content": h(&d.description_content)})).collect::<Vec<_>>(),
            "room_avatar": self.room_avatar,
            "room_subject": self.room_subject,
            "room_mood": self.room_mood,
        })
    }
}

use crate::franking::{FrankAad, FrankingAgentData};

impl ToJson for FrankAad {
    fn to_json(&self) -> Value {
        json!({"franking_tag": h(&self.franking_tag)})
    }
}

impl ToJson for FrankingAgentData {
    fn to_json(&self) -> Value {
        json!({
            "franking_signature_key": h(&self.franking_signature_key),
            "credential": h(self.credential.as_bytes()),
        })
    }
}
