//! The OpenStack client for Platform9 Private Cloud Director: `clouds.yaml`, Keystone v3 tokens,
//! and the few Nova, Glance and Neutron calls Gatehouse makes, behind the domain's [`Cloud`] port.
//!
//! One [`reqwest::Client`] per cloud (its TLS settings from clouds.yaml), one Keystone token per
//! cloud shared by all calls and renewed a minute before it expires or when a service answers 401.
//! With each token, the Nova microversion is negotiated from the compute version document
//! ([`microversion`]): the highest Gatehouse needs that the cloud offers, 2.1 at the least.
//!
//! Outbound rules: TLS is verified unless a cloud says `verify: false` *and* the caller allows it
//! (`GATEHOUSE_ALLOW_INSECURE_TLS`); Keystone and the catalog's endpoints must be https except on
//! loopback; a redirect is never followed (it would carry the token), it is an upstream error.

mod clouds;
mod endpoint;
mod keystone;
pub mod microversion;
mod outbound;
mod pcd;

pub use clouds::{
    AppCredentialRef, CloudConfig, CloudsError, CloudsFile, Credentials, DomainRef, Interface, ProjectRef, Secret,
    UserRef,
};
pub use endpoint::Service;
pub use pcd::{NOVA_MICROVERSION, Pcd};

#[doc(no_inline)]
pub use domain::ports::Cloud;
