//! The NIC component's arguments and admission.

use libos_sel4::nic::NicKind;
use nic::{admit, Config, ConfigError};
use proto::net::Error;
use proto::Name;

fn args<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
    move |k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)
}

#[test]
fn parses_the_region_driver_and_moderation() {
    let c = Config::parse(args(&[("region", "nic0-frames")])).unwrap();
    assert_eq!(c.region, Name::new("nic0-frames").unwrap());
    assert_eq!((c.nic, c.itr), (NicKind::E1000e, None));
    let c = Config::parse(args(&[
        ("region", "r"),
        ("nic", "virtio-net"),
        ("itr", "0"),
    ]))
    .unwrap();
    assert_eq!((c.nic, c.itr), (NicKind::VirtioNet, Some(0)));
    assert_eq!(c.e1000e_config().interrupt_throttle, 0);
}

#[test]
fn refuses_bad_arguments() {
    assert_eq!(Config::parse(args(&[])), Err(ConfigError::NoRegion));
    assert_eq!(
        Config::parse(args(&[("region", "r"), ("nic", "ne2000")])),
        Err(ConfigError::Bad("nic"))
    );
    assert_eq!(
        Config::parse(args(&[("region", "r"), ("itr", "-3")])),
        Err(ConfigError::Bad("itr"))
    );
    let long = "x".repeat(100);
    assert_eq!(
        Config::parse(args(&[("region", &long)])),
        Err(ConfigError::Bad("region"))
    );
}

#[test]
fn only_the_own_region_with_its_nonce_is_admitted() {
    let ours = Name::new("frames").unwrap();
    let other = Name::new("iperf-a-net").unwrap();
    assert_eq!(admit(ours, ours, Some(7), 7), Ok(()));
    assert_eq!(admit(ours, ours, Some(7), 8), Err(Error::NotFound));
    assert_eq!(admit(ours, other, Some(7), 7), Err(Error::NotFound));
    assert_eq!(admit(ours, ours, None, 7), Err(Error::BadRegion));
}
