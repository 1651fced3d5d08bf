//! Code points of the room layer, in one place (`ROOM-codepoints`). The drafts only suggest
//! most of them (mimi-facts §3.1; room-policy-03 §10.1 "TBD0–TBD12"), so a deployment may
//! override them with [`CodePoints`].

/// The component IDs a room uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodePoints {
    /// Participant list (protocol-06 §10.3).
    pub participant_list: u16,
    /// Room metadata (protocol-06 §10.4).
    pub room_metadata: u16,
    /// Roles list (room-policy-03, suggested).
    pub roles_list: u16,
    /// Preauthorization list (room-policy-03, suggested; matched for basic credentials,
    /// `ROOM-policy-preauth`).
    pub preauth_list: u16,
    /// Base room policy (room-policy-03, suggested).
    pub base_room_policy: u16,
    /// Status notification policy (room-policy-03 §6.1, suggested; `ROOM-policy-status`).
    pub status_notification_policy: u16,
    /// Link preview policy (§6.3, suggested; `ROOM-policy-link-preview`).
    pub link_preview_policy: u16,
    /// Asset policy (§6.4, suggested; `ROOM-policy-assets`).
    pub asset_policy: u16,
    /// Logging policy (§6.5, suggested; `ROOM-policy-logging`).
    pub logging_policy: u16,
    /// Chat history policy (§6.6, suggested; `ROOM-policy-history`).
    pub chat_history_policy: u16,
    /// Chat bot policy (§6.7, suggested; `ROOM-policy-bots`).
    pub bot_policy: u16,
    /// Message expiration policy (§6.8, suggested; `ROOM-policy-expiry`).
    pub message_expiration_policy: u16,
    /// MLS operational parameters (§7, `mls_operational_policy`, suggested;
    /// `ROOM-policy-operational`).
    pub mls_operational_policy: u16,
    /// Join link policy (room-policy-03, suggested).
    pub join_link_policy: u16,
    /// Join links (room-policy-03, suggested; a delta component).
    pub join_links: u16,
}

impl CodePoints {
    /// The values in the drafts.
    pub const DRAFT: CodePoints = CodePoints {
        participant_list: 0x0022,
        room_metadata: 0x0023,
        roles_list: 0x0025,
        preauth_list: 0x0026,
        base_room_policy: 0x0027,
        status_notification_policy: 0x0028,
        link_preview_policy: 0x002B,
        asset_policy: 0x002C,
        logging_policy: 0x002D,
        chat_history_policy: 0x002E,
        bot_policy: 0x002F,
        message_expiration_policy: 0x0030,
        mls_operational_policy: 0x0024,
        join_link_policy: 0x0029,
        join_links: 0x002A,
    };
}

impl Default for CodePoints {
    fn default() -> Self {
        Self::DRAFT
    }
}

/// Role capabilities (room-policy-03 §8, §10.2; IANA "MIMI Role Capabilities").
pub mod cap {
    /// Add another user to the participant list.
    pub const CAN_ADD_PARTICIPANT: u16 = 0x0000;
    /// Remove another user.
    pub const CAN_REMOVE_PARTICIPANT: u16 = 0x0001;
    /// Add one's own client.
    pub const CAN_ADD_OWN_CLIENT: u16 = 0x0002;
    /// Remove one's own client.
    pub const CAN_REMOVE_OWN_CLIENT: u16 = 0x0003;
    /// Join without an invitation (only on role 0).
    pub const CAN_OPEN_JOIN: u16 = 0x0004;
    /// Join if preauthorized.
    pub const CAN_JOIN_IF_PREAUTHORIZED: u16 = 0x0005;
    /// Leave the room.
    pub const CAN_REMOVE_SELF: u16 = 0x0006;
    /// Join with a join code.
    pub const CAN_USE_JOIN_CODE: u16 = 0x0009;
    /// Ban a user.
    pub const CAN_BAN: u16 = 0x000a;
    /// Lift a ban.
    pub const CAN_UNBAN: u16 = 0x000b;
    /// Remove another user's clients, keeping the user listed.
    pub const CAN_KICK: u16 = 0x000c;
    /// Change another user's role.
    pub const CAN_CHANGE_USER_ROLE: u16 = 0x000f;
    /// Change one's own role (by preauthorization).
    pub const CAN_CHANGE_OWN_ROLE: u16 = 0x0010;
    /// Send application messages.
    pub const CAN_SEND_MESSAGE: u16 = 0x0100;
    /// Receive application messages.
    pub const CAN_RECEIVE_MESSAGE: u16 = 0x0101;
    /// Report abuse.
    pub const CAN_REPORT_ABUSE: u16 = 0x0103;
    /// Reply.
    pub const CAN_REPLY_TO_MESSAGE: u16 = 0x0104;
    /// React.
    pub const CAN_REACT_TO_MESSAGE: u16 = 0x0105;
    /// Edit own messages.
    pub const CAN_EDIT_OWN_MESSAGE: u16 = 0x0109;
    /// Delete own messages.
    pub const CAN_DELETE_OWN_MESSAGE: u16 = 0x010a;
    /// Change the room name.
    pub const CAN_CHANGE_ROOM_NAME: u16 = 0x0300;
    /// Change the descriptions.
    pub const CAN_CHANGE_ROOM_DESCRIPTION: u16 = 0x0301;
    /// Change the avatar.
    pub const CAN_CHANGE_ROOM_AVATAR: u16 = 0x0302;
    /// Change the subject.
    pub const CAN_CHANGE_ROOM_SUBJECT: u16 = 0x0303;
    /// Change the mood.
    pub const CAN_CHANGE_ROOM_MOOD: u16 = 0x0304;
    /// Destroy the room.
    pub const CAN_DESTROY_ROOM: u16 = 0x0501;
    /// Change the base room policy.
    pub const CAN_CHANGE_ROOM_MEMBERSHIP_STYLE: u16 = 0x0502;
    /// Change role definitions.
    pub const CAN_CHANGE_ROLE_DEFINITIONS: u16 = 0x0503;
    /// Change the preauthorization list.
    pub const CAN_CHANGE_PREAUTHORIZED_USER_LIST: u16 = 0x0504;
    /// Change other policy components (reserved in room-policy-03 §8.7; we honour it for the
    /// §6 components besides canChangeRoomMembershipStyle, see spec-notes/decisions.md).
    pub const CAN_CHANGE_OTHER_POLICY_ATTRIBUTE: u16 = 0x0505;

    /// The registered name of a capability, for messages.
    pub fn name(c: u16) -> &'static str {
        match c {
            CAN_ADD_PARTICIPANT => "canAddParticipant",
            CAN_REMOVE_PARTICIPANT => "canRemoveParticipant",
            CAN_ADD_OWN_CLIENT => "canAddOwnClient",
            CAN_REMOVE_OWN_CLIENT => "canRemoveOwnClient",
            CAN_OPEN_JOIN => "canOpenJoin",
            CAN_JOIN_IF_PREAUTHORIZED => "canJoinIfPreauthorized",
            CAN_REMOVE_SELF => "canRemoveSelf",
            CAN_USE_JOIN_CODE => "canUseJoinCode",
            CAN_BAN => "canBan",
            CAN_UNBAN => "canUnBan",
            CAN_KICK => "canKick",
            CAN_CHANGE_USER_ROLE => "canChangeUserRole",
            CAN_CHANGE_OWN_ROLE => "canChangeOwnRole",
            CAN_SEND_MESSAGE => "canSendMessage",
            CAN_RECEIVE_MESSAGE => "canReceiveMessage",
            CAN_REPORT_ABUSE => "canReportAbuse",
            CAN_REPLY_TO_MESSAGE => "canReplyToMessage",
            CAN_REACT_TO_MESSAGE => "canReactToMessage",
            CAN_EDIT_OWN_MESSAGE => "canEditOwnMessage",
            CAN_DELETE_OWN_MESSAGE => "canDeleteOwnMessage",
            CAN_CHANGE_ROOM_NAME => "canChangeRoomName",
            CAN_CHANGE_ROOM_DESCRIPTION => "canChangeRoomDescription",
            CAN_CHANGE_ROOM_AVATAR => "canChangeRoomAvatar",
            CAN_CHANGE_ROOM_SUBJECT => "canChangeRoomSubject",
            CAN_CHANGE_ROOM_MOOD => "canChangeRoomMood",
            CAN_DESTROY_ROOM => "canDestroyRoom",
            CAN_CHANGE_ROOM_MEMBERSHIP_STYLE => "canChangeRoomMembershipStyle",
            CAN_CHANGE_ROLE_DEFINITIONS => "canChangeRoleDefinitions",
            CAN_CHANGE_PREAUTHORIZED_USER_LIST => "canChangePreauthorizedUserList",
            CAN_CHANGE_OTHER_POLICY_ATTRIBUTE => "canChangeOtherPolicyAttribute",
            _ => "an unregistered capability",
        }
    }
}
