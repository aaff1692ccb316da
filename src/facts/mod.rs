//! Facts: what kprov knows about a host before it plans.
//!
//! A fact is a query (what to look at) plus a parser (what the answer means), as in pyinfra.
//! For each host the planned resources name the queries they need; [`FactScript`] turns the
//! whole set into ONE POSIX shell script, so gathering costs one SSH round trip per host, and
//! [`parse`] turns its output into typed [`HostFacts`].
//!
//! The script prints one block per query, each opened by a marker line `@@kprov-fact N` where N
//! is the query's index in the script; a marker may open the same block again (the batched
//! kinds, packages and services, print their blocks from one tool's output), and the parser
//! appends. Files are batched by name rather than index: `@@kprov-fact file` is followed by
//! `name=PATH` (what `stat` printed), and `@@kprov-fact contents` lists the small files by
//! name, then their concatenated content as one `data=` line, split by the sizes in their
//! `stat` blocks. Values that may hold arbitrary bytes (file contents) are base64-encoded on
//! the host, so no output can forge a marker.

mod parse;
mod query;
mod script;
pub mod snapshot;

pub use parse::{FactParseError, normalize_sysctl, parse};
pub use query::{
    BootFact, ConfigFile, DpkgFact, FactQuery, FactValue, FileFact, OsFact, PackageFact, ServiceFact, SwapFact, SwapGenerator, SwapUnit,
};
pub use script::FactScript;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Every fact gathered from one host, keyed by the query that produced it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    #[serde(with = "facts_as_list")]
    pub values: BTreeMap<FactQuery, FactValue>,
}

impl HostFacts {
    pub fn get(&self, query: &FactQuery) -> Option<&FactValue> {
        self.values.get(query)
    }

    pub fn insert(&mut self, query: FactQuery, value: FactValue) {
        self.values.insert(query, value);
    }

    pub fn os(&self) -> Option<&OsFact> {
        match self.values.get(&FactQuery::Os) {
            Some(FactValue::Os(os)) => Some(os),
            _ => None,
        }
    }

    pub fn file(&self, path: &str) -> Option<&FileFact> {
        match self.values.get(&FactQuery::File { path: path.to_string() }) {
            Some(FactValue::File(f)) => Some(f),
            _ => None,
        }
    }

    /// A stable digest of every fact, recorded in a saved plan so that applying it later can
    /// refuse when the hosts have changed since.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).expect("facts always serialize");
        crate::digest::sha256_hex(&json)
    }
}

/// JSON maps need string keys; a list of pairs keeps the typed query as the key.
mod facts_as_list {
    use super::{FactQuery, FactValue};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(map: &BTreeMap<FactQuery, FactValue>, s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(&FactQuery, &FactValue)> = map.iter().collect();
        pairs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<FactQuery, FactValue>, D::Error> {
        let pairs: Vec<(FactQuery, FactValue)> = Vec::deserialize(d)?;
        Ok(pairs.into_iter().collect())
    }
}
