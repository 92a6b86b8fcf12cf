//! Reading a rule's `when`: the request facts it looks at, each checked at its line and column.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::policy::{Bounds, Names, When};
use super::policy_yaml::NewKey;
use crate::policy::yaml::{checked_map, parsed_str};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    #[serde(default)]
    cloud: Option<Names>,
    #[serde(default)]
    flavor: Option<Names>,
    #[serde(default)]
    image: Option<Names>,
    #[serde(default)]
    network: Option<Names>,
    #[serde(default)]
    min_vcpus: Option<u64>,
    #[serde(default)]
    max_vcpus: Option<u64>,
    #[serde(default)]
    min_ram_mb: Option<u64>,
    #[serde(default)]
    max_ram_mb: Option<u64>,
    #[serde(default)]
    min_count: Option<u64>,
    #[serde(default)]
    max_count: Option<u64>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// Inclusive bounds on `what`; refused when the minimum is above the maximum.
fn bounds(what: &str, min: Option<u64>, max: Option<u64>) -> Result<Bounds, String> {
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(format!("min_{what} ({min}) is above max_{what} ({max}): no request could match"));
    }
    Ok(Bounds { min, max })
}

pub(super) struct WhenEntry(pub(super) When);

impl<'de> Deserialize<'de> for WhenEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(
            d,
            "a rule's `when`: cloud, flavor, image, network, min_vcpus, max_vcpus, min_ram_mb, max_ram_mb, \
             min_count, max_count, metadata",
            |raw: RawWhen| {
                let when = When {
                    vcpus: bounds("vcpus", raw.min_vcpus, raw.max_vcpus)?,
                    ram_mb: bounds("ram_mb", raw.min_ram_mb, raw.max_ram_mb)?,
                    count: bounds("count", raw.min_count, raw.max_count)?,
                    cloud: raw.cloud,
                    flavor: raw.flavor,
                    image: raw.image,
                    network: raw.network,
                    metadata: raw.metadata.map(|m| m.0).unwrap_or_default(),
                };
                let unbounded = |b: &Bounds| b.min.is_none() && b.max.is_none();
                if when.cloud.is_none()
                    && when.flavor.is_none()
                    && when.image.is_none()
                    && when.network.is_none()
                    && unbounded(&when.vcpus)
                    && unbounded(&when.ram_mb)
                    && unbounded(&when.count)
                    && when.metadata.is_empty()
                {
                    return Err("`when` is empty: leave it out (in the last rule) to match every request".into());
                }
                Ok(WhenEntry(when))
            },
        )
    }
}

/// A name, or a list of names; a number or boolean is taken as its text (flavor ids are often
/// numbers, metadata values may be).
impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn one<E: de::Error>(v: String) -> Result<Names, E> {
            Name::checked(v).map(|n| Names(vec![n.0])).map_err(E::custom)
        }
        impl<'de> Visitor<'de> for V {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name or a list of names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Names, E> {
                one(v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Names, E> {
                one(v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Names, E> {
                one(v.to_string())
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Names, E> {
                one(v.to_string())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<Name>()? {
                    names.push(name.0);
                }
                if names.is_empty() {
                    return Err(de::Error::custom("the list is empty: name at least one, or leave the key out"));
                }
                Ok(Names(names))
            }
        }
        d.deserialize_any(V)
    }
}

/// One name in a list: any scalar's text, not empty.
struct Name(String);

impl Name {
    fn checked(v: String) -> Result<Name, String> {
        if v.is_empty() { Err("a name must not be empty".into()) } else { Ok(Name(v)) }
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed_str(d, "a name", |s| Name::checked(s.to_string()))
    }
}

/// `when.metadata`: key → the values one of which the request's metadata must have there.
struct Metadata(Vec<(String, Names)>);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metadata;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of metadata keys to a value or a list of values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                let mut out: Vec<(String, Names)> = Vec::new();
                loop {
                    let seen = |k: &str| out.iter().any(|(key, _)| key == k);
                    let Some(key) = map.next_key_seed(NewKey { what: "metadata key", seen: &seen })? else { break };
                    let values = map.next_value::<Names>()?;
                    out.push((key, values));
                }
                if out.is_empty() {
                    return Err(de::Error::custom("metadata is empty: name a key and its values, or leave it out"));
                }
                Ok(Metadata(out))
            }
        }
        d.deserialize_map(V)
    }
}
