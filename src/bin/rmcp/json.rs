//! The CLI's JSON: serde_json's `Value`, built key by key in order
//! (`preserve_order`) so `rmcp doctor --json` keeps its documented layout.

pub use serde_json::Value as Json;

/// Builder-style objects: `Json::obj().with("key", value)`.
pub trait JsonObj {
    fn obj() -> Json;
    /// Appends `key` (objects only; other values are returned unchanged).
    fn with(self, key: &str, value: impl Into<Json>) -> Json;
}

impl JsonObj for Json {
    fn obj() -> Json {
        Json::Object(serde_json::Map::new())
    }

    fn with(mut self, key: &str, value: impl Into<Json>) -> Json {
        if let Json::Object(ref mut m) = self {
            m.insert(key.to_string(), value.into());
        }
        self
    }
}

/// One JSON document, or None when it is not valid JSON.
pub fn parse(text: &str) -> Option<Json> {
    serde_json::from_str(text).ok()
}

/// Two-space indented output.
pub fn pretty(v: &Json) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}
