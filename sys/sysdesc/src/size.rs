//! Memory sizes written with binary units ("64KiB", "4 MiB", "1GiB", "4096").

use core::fmt;

/// Why a size text did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeError {
    /// No digits before the unit.
    NoNumber,
    /// A unit other than B, KiB, MiB or GiB.
    UnknownUnit,
    /// More than 2^64 - 1 bytes.
    TooLarge,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SizeError::NoNumber => "expected a whole number of bytes, KiB, MiB or GiB",
            SizeError::UnknownUnit => "unknown unit (use B, KiB, MiB or GiB)",
            SizeError::TooLarge => "size too large",
        })
    }
}

/// Parses a size: decimal digits, optional spaces, and an optional unit `B`, `KiB`, `MiB` or
/// `GiB` (binary multiples). Returns the size in bytes; zero is returned as zero (validation
/// rejects it where it matters).
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(SizeError::NoNumber);
    }
    let number: u64 = digits.parse().map_err(|_| SizeError::TooLarge)?;
    let multiple: u64 = match unit.trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(SizeError::UnknownUnit),
    };
    number.checked_mul(multiple).ok_or(SizeError::TooLarge)
}

/// A size in bytes that displays in the largest binary unit dividing it ("64 KiB").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if bytes != 0 && bytes.is_multiple_of(1 << shift) {
                return write!(f, "{} {unit}", bytes >> shift);
            }
        }
        write!(f, "{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn parses_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("4 MiB"), Ok(4 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("12B"), Ok(12));
        assert_eq!(parse_size("MiB"), Err(SizeError::NoNumber));
        assert_eq!(parse_size("4MB"), Err(SizeError::UnknownUnit));
        assert_eq!(parse_size("99999999999GiB"), Err(SizeError::TooLarge));
    }

    #[test]
    fn displays_largest_unit() {
        assert_eq!(Size(64 << 10).to_string(), "64 KiB");
        assert_eq!(Size(3 << 30).to_string(), "3 GiB");
        assert_eq!(Size(1536 << 10).to_string(), "1536 KiB");
        assert_eq!(Size(100).to_string(), "100 B");
    }
}
