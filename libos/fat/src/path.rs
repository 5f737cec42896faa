//! Names and paths a client may use: checked once, so that nothing past this point sees a
//! `..`, a separator inside a name, or a name FAT cannot hold.

use crate::error::NameError;
use alloc::string::String;

/// The longest name FAT stores, in UTF-16 units.
pub const MAX_NAME_UNITS: usize = 255;
/// The longest path, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;

/// Checks that `name` can be one path component and a FAT long name.
///
/// Fails with the [`NameError`] for the first problem: empty, `.` or `..`, a `/`, `\`,
/// NUL, control or reserved character, a trailing dot or space, or more than 255 UTF-16
/// units.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(NameError::Dot);
    }
    for c in name.chars() {
        match c {
            '/' => return Err(NameError::Slash),
            '\\' => return Err(NameError::Backslash),
            '\0' => return Err(NameError::Nul),
            c if (c as u32) < 0x20 || c == '\u{7f}' => return Err(NameError::Control),
            '"' | '*' | ':' | '<' | '>' | '?' | '|' => return Err(NameError::Reserved),
            _ => {}
        }
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err(NameError::TrailingDotOrSpace);
    }
    if name.encode_utf16().count() > MAX_NAME_UNITS {
        return Err(NameError::TooLong);
    }
    Ok(())
}

/// A path relative to some root (the volume's, or the subtree a client is confined to):
/// zero or more valid names joined by `/`. It cannot be built otherwise, so it can never
/// name anything above its root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Path {
    /// Names joined by '/', no leading or trailing '/'; empty for the root.
    text: String,
}

impl Path {
    /// The root itself.
    pub fn root() -> Path {
        Path::default()
    }

    /// Parses `text`: names separated by single `/`, no leading or trailing `/`; the empty
    /// string is the root.
    ///
    /// Fails with the [`NameError`] of the first bad component ([`NameError::Empty`] for
    /// `a//b`, `/a` or `a/`), or [`NameError::TooLong`] past 4,096 bytes.
    pub fn parse(text: &str) -> Result<Path, NameError> {
        if text.len() > MAX_PATH_BYTES {
            return Err(NameError::TooLong);
        }
        if text.is_empty() {
            return Ok(Path::root());
        }
        for name in text.split('/') {
            check_name(name)?;
        }
        Ok(Path { text: text.into() })
    }

    /// `self` followed by `inner`: how a client's path becomes a volume path under the
    /// client's root. Fails with [`NameError::TooLong`] past 4,096 bytes.
    pub fn join(&self, inner: &Path) -> Result<Path, NameError> {
        if self.is_root() {
            return Ok(inner.clone());
        }
        if inner.is_root() {
            return Ok(self.clone());
        }
        if self.text.len() + 1 + inner.text.len() > MAX_PATH_BYTES {
            return Err(NameError::TooLong);
        }
        let mut text = self.text.clone();
        text.push('/');
        text.push_str(&inner.text);
        Ok(Path { text })
    }

    /// `self` with one more name. Fails as [`check_name`] does, or past 4,096 bytes.
    pub fn child(&self, name: &str) -> Result<Path, NameError> {
        check_name(name)?;
        self.join(&Path { text: name.into() })
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.text.is_empty()
    }

    /// The names from the root down.
    pub fn names(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.text.split('/').filter(|n| !n.is_empty())
    }

    /// The parent and the last name; `None` for the root.
    pub fn split_last(&self) -> Option<(Path, &str)> {
        if self.is_root() {
            return None;
        }
        Some(match self.text.rfind('/') {
            Some(slash) => (
                Path {
                    text: self.text[..slash].into(),
                },
                &self.text[slash + 1..],
            ),
            None => (Path::root(), &self.text[..]),
        })
    }

    /// Whether `self` is `other` or lies under it (compared as FAT does, without case).
    pub fn starts_with(&self, other: &Path) -> bool {
        let mut mine = self.names();
        other
            .names()
            .all(|n| mine.next().is_some_and(|m| crate::entry::names_equal(m, n)))
    }

    /// The path as text (`a/b/c`; empty for the root).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl core::fmt::Display for Path {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "/{}", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn bad_names_are_refused_with_their_reason() {
        let cases = [
            ("", NameError::Empty),
            (".", NameError::Dot),
            ("..", NameError::Dot),
            ("a\\b", NameError::Backslash),
            ("a\0b", NameError::Nul),
            ("a\nb", NameError::Control),
            ("a\u{7f}", NameError::Control),
            ("a:b", NameError::Reserved),
            ("what?", NameError::Reserved),
            ("trailing.", NameError::TrailingDotOrSpace),
            ("trailing ", NameError::TrailingDotOrSpace),
        ];
        for (name, reason) in cases {
            assert_eq!(check_name(name), Err(reason), "{name:?}");
        }
        let long: String = core::iter::repeat_n('x', 256).collect();
        assert_eq!(check_name(&long), Err(NameError::TooLong));
        assert_eq!(check_name(&long[..255]), Ok(()));
        // 128 characters outside the BMP are 256 UTF-16 units.
        let wide: String = core::iter::repeat_n('\u{1F600}', 128).collect();
        assert_eq!(check_name(&wide), Err(NameError::TooLong));
        assert_eq!(check_name("Über café.txt"), Ok(()));
        assert_eq!(check_name(".hidden"), Ok(()));
    }

    #[test]
    fn paths_cannot_climb() {
        for bad in [
            "..", "a/..", "../a", "a/./b", "/a", "a/", "a//b", "a/b\\..", "/",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad:?}");
        }
        let root = Path::parse("clients/one").unwrap();
        let inner = Path::parse("docs/Long Name.txt").unwrap();
        let full = root.join(&inner).unwrap();
        assert_eq!(full.as_str(), "clients/one/docs/Long Name.txt");
        assert!(full.starts_with(&root));
        assert!(!root.starts_with(&full));
        assert_eq!(full.names().collect::<Vec<_>>().len(), 4);
        let (parent, last) = full.split_last().unwrap();
        assert_eq!(
            (parent.as_str(), last),
            ("clients/one/docs", "Long Name.txt")
        );
        assert_eq!(Path::root().join(&inner).unwrap(), inner);
        assert_eq!(root.child("..").unwrap_err(), NameError::Dot);
        assert!(Path::root().split_last().is_none());
    }

    #[test]
    fn overlong_paths_are_refused() {
        let name: String = core::iter::repeat_n('n', 200).collect();
        let mut path = Path::root();
        let mut refused = false;
        for _ in 0..30 {
            match path.child(&name) {
                Ok(p) => path = p,
                Err(e) => {
                    assert_eq!(e, NameError::TooLong);
                    refused = true;
                    break;
                }
            }
        }
        assert!(refused);
        assert!(path.as_str().len() <= MAX_PATH_BYTES);
    }
}
