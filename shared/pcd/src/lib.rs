//! The OpenStack client for Platform9 Private Cloud Director: `clouds.yaml`, Keystone v3 tokens,
//! and the few Nova, Glance and Neutron calls Gatehouse makes, behind the domain's [`Cloud`] port.
//!
//! One [`reqwest::Client`] per cloud (its TLS settings from clouds.yaml), one Keystone token per
//! cloud shared by all calls and renewed a minute before it expires or when a service answers 401.

mod clouds;
mod endpoint;
mod keystone;
mod pcd;

pub use clouds::{
    AppCredentialRef, CloudConfig, CloudsError, CloudsFile, Credentials, DomainRef, Interface, ProjectRef, Secret,
    UserRef,
};
pub use endpoint::Service;
pub use pcd::{NOVA_MICROVERSION, Pcd};

#[doc(no_inline)]
pub use domain::ports::Cloud;
