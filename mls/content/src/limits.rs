//! The documented limits every decoder and encoder of this crate enforces.

/// Limits on MIMI content. The defaults are the draft's own numbers (content-08 §6.3, §9.1) and
/// a local size policy; a researcher may relax them to study other implementations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded message accepted, in octets ("too large according to local policy",
    /// content-08 §9.1). Default 1 MiB: larger content belongs in an external part.
    pub max_message_size: usize,
    /// Most NestedParts in one message, the root included (`CONTENT-9.1-parts`, default 1024).
    pub max_parts: usize,
    /// Deepest NestedPart nesting, the root part being level 1 (`CONTENT-6.3-part-depth`,
    /// default 4).
    pub max_part_depth: usize,
    /// Deepest nesting of maps, arrays and tags in the extensions, the extensions map being
    /// level 1 (`CONTENT-6.3-ext-depth`, default 4).
    pub max_extension_depth: usize,
    /// Longest topicId in octets (`CONTENT-9.1-topic`, default 4096).
    pub max_topic_id: usize,
}

impl Limits {
    /// The draft's limits.
    pub const DRAFT: Limits = Limits {
        max_message_size: 1 << 20,
        max_parts: 1024,
        max_part_depth: 4,
        max_extension_depth: 4,
        max_topic_id: 4096,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DRAFT
    }
}
