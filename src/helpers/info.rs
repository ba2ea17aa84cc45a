//! INFO parsed into sections of key/value maps.

use std::collections::BTreeMap;
use std::future::IntoFuture;

use crate::cmd::cmd;
use crate::commands::CommandSink;
use crate::error::Result;
use crate::resp::Value;
use crate::value::{FromValue, ToArgs};

/// INFO's reply as sections (`server`, `memory`, `keyspace` ...) of key/value pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl Info {
    /// Parses INFO text: `# Section` headers, then `key:value` lines.
    pub fn parse(text: &str) -> Info {
        let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut current = String::from("default");
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('#') {
                current = name.trim().to_ascii_lowercase();
                sections.entry(current.clone()).or_default();
            } else if let Some((k, v)) = line.split_once(':') {
                sections
                    .entry(current.clone())
                    .or_default()
                    .insert(k.to_string(), v.to_string());
            }
        }
        Info { sections }
    }

    /// One value: `info.get("server", "redis_version")`.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .get(&section.to_ascii_lowercase())?
            .get(key)
            .map(String::as_str)
    }

    /// One section's pairs.
    pub fn section(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.sections.get(&name.to_ascii_lowercase())
    }

    /// Every section, by lower-case name.
    pub fn sections(&self) -> &BTreeMap<String, BTreeMap<String, String>> {
        &self.sections
    }
}

/// Runs INFO for `sections` (`()` for the default set, `"all"`, `["server", "memory"]`) and
/// parses it.
pub async fn info_map<S>(sink: &S, sections: impl ToArgs) -> Result<Info>
where
    S: CommandSink,
    for<'a> S::Reply<'a, Value>: IntoFuture<Output = Result<Value>>,
{
    let text = String::from_value(sink.send::<Value>(cmd("INFO").arg(sections)).await?)?;
    Ok(Info::parse(&text))
}

#[cfg(test)]
mod tests {
    use super::Info;

    #[test]
    fn parses_sections_and_pairs() {
        let info = Info::parse(
            "# Server\r\nredis_version:7.0.15\r\nos:Linux x:y\r\n\r\n# Keyspace\r\ndb0:keys=2,expires=0\r\n",
        );
        assert_eq!(info.get("server", "redis_version"), Some("7.0.15"));
        assert_eq!(info.get("Server", "os"), Some("Linux x:y"));
        assert_eq!(info.get("keyspace", "db0"), Some("keys=2,expires=0"));
        assert_eq!(info.sections().len(), 2);
    }
}
