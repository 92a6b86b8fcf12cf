//! The published OpenStack API samples (see `sim/samples/openstack-api-samples/SOURCES.md`), embedded
//! verbatim; hosts and ids are rewritten when answering.

use std::sync::LazyLock;

use serde_json::Value;

macro_rules! sample {
    ($file:literal) => {
        include_str!(concat!("../../samples/openstack-api-samples/", $file))
    };
}

pub(crate) const KEYSTONE_VERSIONS: &str = sample!("keystone-versions-list-response.json");
pub(crate) const KEYSTONE_VERSION_V3: &str = sample!("keystone-version-v3-response.json");
const KEYSTONE_TOKEN: &str = sample!("keystone-auth-token-response.json");
pub(crate) const GLANCE_VERSIONS: &str = sample!("glance-versions-list-response.json");
const GLANCE_IMAGES: &str = sample!("glance-images-list-response.json");
pub(crate) const NOVA_VERSIONS: &str = sample!("nova-versions-list-response.json");
pub(crate) const NOVA_VERSION_V21: &str = sample!("nova-version-v2.1-response.json");
const NOVA_FLAVORS: &str = sample!("nova-flavors-detail-response.json");
const NOVA_SERVER_CREATE: &str = sample!("nova-server-create-response.json");
const NOVA_SERVER_GET: &str = sample!("nova-server-get-response.json");
const NOVA_LIMITS: &str = sample!("nova-limits-get-v2.36-response.json");
pub(crate) const NEUTRON_VERSIONS: &str = sample!("neutron-versions-list-response.json");
const NEUTRON_NETWORKS: &str = sample!("neutron-networks-list-response.json");

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("embedded OpenStack sample is valid JSON")
}

fn first_of(text: &str, key: &str) -> Value {
    parse(text)[key][0].clone()
}

/// `token` of the full-catalog Keystone sample.
pub(crate) static TOKEN: LazyLock<Value> = LazyLock::new(|| parse(KEYSTONE_TOKEN)["token"].clone());
/// One image of Glance's image list sample.
pub(crate) static IMAGE: LazyLock<Value> = LazyLock::new(|| first_of(GLANCE_IMAGES, "images"));
/// The top level of Glance's image list sample (`schema`, `first`, ...).
pub(crate) static IMAGE_LIST: LazyLock<Value> = LazyLock::new(|| parse(GLANCE_IMAGES));
/// One flavor of Nova's flavor detail sample.
pub(crate) static FLAVOR: LazyLock<Value> = LazyLock::new(|| first_of(NOVA_FLAVORS, "flavors"));
/// `server` of Nova's create response sample.
pub(crate) static SERVER_CREATED: LazyLock<Value> = LazyLock::new(|| parse(NOVA_SERVER_CREATE)["server"].clone());
/// `server` of Nova's show sample.
pub(crate) static SERVER: LazyLock<Value> = LazyLock::new(|| parse(NOVA_SERVER_GET)["server"].clone());
/// Nova's limits sample (microversion 2.36).
pub(crate) static LIMITS: LazyLock<Value> = LazyLock::new(|| parse(NOVA_LIMITS));
/// One network of Neutron's network list sample.
pub(crate) static NETWORK: LazyLock<Value> = LazyLock::new(|| first_of(NEUTRON_NETWORKS, "networks"));

/// A sample with its example hosts replaced (`(from, to)` pairs, in order), parsed.
pub(crate) fn rewrite(text: &str, replacements: &[(&str, &str)]) -> Value {
    let mut s = text.to_string();
    for (from, to) in replacements {
        s = s.replace(from, to);
    }
    parse(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse_and_have_the_expected_shape() {
        assert!(TOKEN["catalog"].is_array());
        assert!(IMAGE["os_hash_algo"].is_string());
        assert_eq!(IMAGE_LIST["schema"], "/v2/schemas/images");
        assert!(FLAVOR["OS-FLV-EXT-DATA:ephemeral"].is_number());
        assert!(SERVER_CREATED["adminPass"].is_string());
        assert!(SERVER["OS-EXT-STS:vm_state"].is_string());
        assert!(NETWORK["router:external"].is_boolean());
        assert!(LIMITS["limits"]["absolute"]["maxTotalCores"].is_number());
        for text in
            [KEYSTONE_VERSIONS, KEYSTONE_VERSION_V3, GLANCE_VERSIONS, NOVA_VERSIONS, NOVA_VERSION_V21, NEUTRON_VERSIONS]
        {
            parse(text);
        }
    }
}
