use super::*;

#[test]
fn errno_values_are_linux_numbers_and_every_error_has_one() {
    assert_eq!(Error::NotFound.errno(), 2);
    assert_eq!(Error::BadDescriptor.errno(), 9);
    assert_eq!(Error::Exists.errno(), 17);
    assert_eq!(Error::InvalidName.errno(), 22);
    assert_eq!(Error::TooManyOpen.errno(), 24);
    assert_eq!(Error::NoSpace.errno(), 28);
    assert_eq!(Error::NameTooLong.errno(), 36);
    assert_eq!(Error::NotEmpty.errno(), 39);
    assert_eq!(Error::ServerRestarted.errno(), 116);
    assert_eq!(Error::Unavailable.errno(), 19);
    for e in Error::ALL {
        assert!(e.errno() > 0, "{e:?}");
        assert!(!alloc::format!("{e}").is_empty());
    }
}

#[test]
fn paths_are_normalised_or_refused() {
    assert_eq!(normalise("/"), Ok(""));
    assert_eq!(normalise(""), Ok(""));
    assert_eq!(normalise("//a/b/"), Ok("a/b"));
    assert_eq!(normalise("docs/Long Name.txt"), Ok("docs/Long Name.txt"));
    for bad in [
        "..", "/..", "a/../b", "a/./b", ".", "a//b", "a\0b", "a\nb", "a\\b",
    ] {
        assert_eq!(normalise(bad), Err(Error::InvalidName), "{bad:?}");
    }
    let long = "x".repeat(MAX_NAME + 1);
    assert_eq!(normalise(&long), Err(Error::NameTooLong));
    assert_eq!(normalise(&"a/".repeat(MAX_PATH)), Err(Error::NameTooLong));
}

#[test]
fn contradictory_flags_are_refused() {
    let ok = [
        OpenFlags::READ,
        OpenFlags::WRITE,
        OpenFlags::READ | OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
        OpenFlags::WRITE | OpenFlags::APPEND | OpenFlags::TRUNCATE,
    ];
    for flags in ok {
        assert_eq!(flags.check(), Ok(flags), "{flags:?}");
    }
    let bad = [
        OpenFlags(0),
        OpenFlags::READ | OpenFlags::CREATE,
        OpenFlags::READ | OpenFlags::TRUNCATE,
        OpenFlags::READ | OpenFlags::APPEND,
        OpenFlags::WRITE | OpenFlags::EXCLUSIVE,
        OpenFlags(OpenFlags::READ.0 | 64),
    ];
    for flags in bad {
        assert_eq!(flags.check(), Err(Error::Invalid), "{flags:?}");
    }
}

#[test]
fn open_flags_carry_the_protocols_bits() {
    use proto::fs::flags;
    assert_eq!(OpenFlags::READ.0, flags::READ);
    assert_eq!(OpenFlags::WRITE.0, flags::WRITE);
    assert_eq!(OpenFlags::CREATE.0, flags::CREATE);
    assert_eq!(OpenFlags::EXCLUSIVE.0, flags::EXCLUSIVE);
    assert_eq!(OpenFlags::TRUNCATE.0, flags::TRUNCATE);
    assert_eq!(OpenFlags::APPEND.0, flags::APPEND);
    assert_eq!(OpenFlags::ALL.0, flags::ALL);
}
