//! The directory (protocol-06 §5.1): `GET /.well-known/mimi-protocol-directory`, a JSON object
//! of URL templates, one per endpoint. The draft's own example is not valid JSON and writes
//! `update{roomId}` without a slash; ours is valid JSON with `/update/{roomId}`. A template holds
//! its endpoint's variable exactly once, anywhere (RFC 6570 level 1)
//! (`WIRE-5.1-directory`).

use crate::id::{path_decode, path_encode};
use serde::{Deserialize, Serialize};

/// The well-known path of the directory.
pub const WELL_KNOWN_PATH: &str = "/.well-known/mimi-protocol-directory";

/// The directory document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// `…/keyMaterial/{targetUser}`.
    pub key_material: String,
    /// `…/update/{roomId}`.
    pub update: String,
    /// `…/notify/{roomId}`.
    pub notify: String,
    /// `…/submitMessage/{roomId}`.
    pub submit_message: String,
    /// `…/groupInfo/{roomId}`.
    pub group_info: String,
    /// `…/requestConsent/{targetUser}`.
    pub request_consent: String,
    /// `…/updateConsent/{requesterUser}`.
    pub update_consent: String,
    /// `…/identifierQuery/{domain}`.
    pub identifier_query: String,
    /// `…/reportAbuse/{roomId}`.
    pub report_abuse: String,
    /// `…/proxyDownload/{downloadUrl}` (optional in other providers' directories; ours has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_download: Option<String>,
}

/// Which endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// keyMaterial
    KeyMaterial,
    /// update
    Update,
    /// notify
    Notify,
    /// submitMessage
    SubmitMessage,
    /// groupInfo
    GroupInfo,
    /// requestConsent
    RequestConsent,
    /// updateConsent
    UpdateConsent,
    /// identifierQuery
    IdentifierQuery,
    /// reportAbuse
    ReportAbuse,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 9] = [
        Endpoint::KeyMaterial,
        Endpoint::Update,
        Endpoint::Notify,
        Endpoint::SubmitMessage,
        Endpoint::GroupInfo,
        Endpoint::RequestConsent,
        Endpoint::UpdateConsent,
        Endpoint::IdentifierQuery,
        Endpoint::ReportAbuse,
    ];

    /// The directory key and path name.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::KeyMaterial => "keyMaterial",
            Endpoint::Update => "update",
            Endpoint::Notify => "notify",
            Endpoint::SubmitMessage => "submitMessage",
            Endpoint::GroupInfo => "groupInfo",
            Endpoint::RequestConsent => "requestConsent",
            Endpoint::UpdateConsent => "updateConsent",
            Endpoint::IdentifierQuery => "identifierQuery",
            Endpoint::ReportAbuse => "reportAbuse",
        }
    }

    /// The template variable.
    pub fn variable(self) -> &'static str {
        match self {
            Endpoint::KeyMaterial | Endpoint::RequestConsent => "targetUser",
            Endpoint::UpdateConsent => "requesterUser",
            Endpoint::IdentifierQuery => "domain",
            _ => "roomId",
        }
    }
}

/// A template or URL that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The template does not hold the endpoint's variable exactly once, or holds another.
    #[error("template {template:?} must contain {{{variable}}} exactly once and no other variable")]
    BadTemplate {
        /// The template.
        template: String,
        /// The variable it should hold.
        variable: &'static str,
    },
    /// A URL that is not an expansion of the template.
    #[error("{url:?} does not match the template {template:?}")]
    NoMatch {
        /// The URL.
        url: String,
        /// The template.
        template: String,
    },
    /// The value in the URL is not valid percent-encoding.
    #[error("{0}")]
    BadValue(String),
    /// Not valid JSON or a key is missing.
    #[error("not a MIMI directory document: {0}")]
    Json(String),
}

impl Directory {
    /// The directory of a provider whose endpoints are under `base` (for example
    /// `https://a.example/v1`).
    pub fn for_base(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        let t = |e: Endpoint| format!("{base}/{}/{{{}}}", e.name(), e.variable());
        Self {
            key_material: t(Endpoint::KeyMaterial),
            update: t(Endpoint::Update),
            notify: t(Endpoint::Notify),
            submit_message: t(Endpoint::SubmitMessage),
            group_info: t(Endpoint::GroupInfo),
            request_consent: t(Endpoint::RequestConsent),
            update_consent: t(Endpoint::UpdateConsent),
            identifier_query: t(Endpoint::IdentifierQuery),
            report_abuse: t(Endpoint::ReportAbuse),
            proxy_download: None,
        }
    }

    /// Reads the JSON document.
    pub fn from_json(text: &str) -> Result<Self, DirectoryError> {
        let d: Self =
            serde_json::from_str(text).map_err(|e| DirectoryError::Json(e.to_string()))?;
        let mut templates: Vec<(&str, &'static str)> = Endpoint::ALL
            .iter()
            .map(|e| (d.template(*e), e.variable()))
            .collect();
        if let Some(p) = &d.proxy_download {
            templates.push((p, "downloadUrl"));
        }
        for (t, variable) in templates {
            split_template(t, variable)?;
        }
        Ok(d)
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The template of an endpoint.
    pub fn template(&self, e: Endpoint) -> &str {
        match e {
            Endpoint::KeyMaterial => &self.key_material,
            Endpoint::Update => &self.update,
            Endpoint::Notify => &self.notify,
            Endpoint::SubmitMessage => &self.submit_message,
            Endpoint::GroupInfo => &self.group_info,
            Endpoint::RequestConsent => &self.request_consent,
            Endpoint::UpdateConsent => &self.update_consent,
            Endpoint::IdentifierQuery => &self.identifier_query,
            Endpoint::ReportAbuse => &self.report_abuse,
        }
    }

    /// Expands an endpoint's template with an identifier: RFC 6570 level-1 simple expansion,
    /// every octet outside `unreserved` percent-encoded (the same as `WIRE-id-path`).
    pub fn expand(&self, e: Endpoint, value: &str) -> String {
        let t = self.template(e);
        let var = format!("{{{}}}", e.variable());
        t.replacen(&var, &path_encode(value), 1)
    }

    /// The identifier in a URL built from an endpoint's template (percent-decoded).
    pub fn extract(&self, e: Endpoint, url: &str) -> Result<String, DirectoryError> {
        let t = self.template(e);
        let (prefix, suffix) = split_template(t, e.variable())?;
        let value = url
            .strip_prefix(prefix)
            .and_then(|v| v.strip_suffix(suffix))
            .filter(|v| !v.is_empty())
            .ok_or_else(|| DirectoryError::NoMatch {
                url: url.to_owned(),
                template: t.to_owned(),
            })?;
        path_decode(value).map_err(|e| DirectoryError::BadValue(e.to_string()))
    }
}

/// `(before, after)` the one `{variable}` of a template.
fn split_template<'t>(
    template: &'t str,
    variable: &'static str,
) -> Result<(&'t str, &'t str), DirectoryError> {
    let bad = || DirectoryError::BadTemplate {
        template: template.to_owned(),
        variable,
    };
    let var = format!("{{{variable}}}");
    let (before, after) = template.split_once(&var).ok_or_else(bad)?;
    if [before, after].iter().any(|p| p.contains(['{', '}'])) {
        return Err(bad());
    }
    Ok((before, after))
}
