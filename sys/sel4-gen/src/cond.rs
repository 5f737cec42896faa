//! A tiny C preprocessor-expression evaluator for `condition=` attributes and
//! `#if` lines: integers, identifiers, `defined X` / `defined(X)`, `!`, `~`,
//! unary `-`, `* / %`, `+ -`, `<< >>`, comparisons, `== !=`, `& ^ |`, `&& ||`
//! and parentheses.
//!
//! Identifiers are resolved by a caller-supplied lookup; `CONFIG_*` names come
//! from the kernel configuration (undefined names are 0, as in C).

use kernel_support::Resolved;

/// Looks up a symbol: `Some(value)` when defined.
pub trait Symbols {
    /// The value of `name`, or `None` when it is not defined.
    fn value(&self, name: &str) -> Option<i64>;
}

impl Symbols for Resolved {
    fn value(&self, name: &str) -> Option<i64> {
        if !name.starts_with("CONFIG_") || !self.is_defined(name) {
            return None;
        }
        // Defined string options count as 1 in `#if`.
        Some(self.int(name).unwrap_or(1))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(i64),
    Ident(String),
    Op(&'static str),
}

const OPS: [&str; 24] = [
    "&&", "||", "==", "!=", "<=", ">=", "<<", ">>", "(", ")", "!", "~", "<", ">", "+", "-", "*",
    "/", "%", "&", "|", "^", "?", ":",
];

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    'outer: while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            let lit = text[start..i].trim_end_matches(['u', 'U', 'l', 'L']);
            let v = if let Some(h) = lit.strip_prefix("0x").or_else(|| lit.strip_prefix("0X")) {
                i64::from_str_radix(h, 16)
            } else if lit.len() > 1 && lit.starts_with('0') {
                i64::from_str_radix(&lit[1..], 8)
            } else {
                lit.parse()
            };
            out.push(Tok::Num(
                v.map_err(|_| format!("bad number `{lit}` in `{text}`"))?,
            ));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(text[start..i].to_string()));
            continue;
        }
        for op in OPS {
            if text[i..].starts_with(op) {
                out.push(Tok::Op(op));
                i += op.len();
                continue 'outer;
            }
        }
        return Err(format!("unexpected `{}` in `{text}`", c as char));
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    syms: &'a dyn Symbols,
    text: &'a str,
}

fn binary_prec(op: &str) -> Option<u8> {
    Some(match op {
        "||" => 1,
        "&&" => 2,
        "|" => 3,
        "^" => 4,
        "&" => 5,
        "==" | "!=" => 6,
        "<" | ">" | "<=" | ">=" => 7,
        "<<" | ">>" => 8,
        "+" | "-" => 9,
        "*" | "/" | "%" => 10,
        _ => return None,
    })
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("{what} in expression `{}`", self.text)
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, op: &str) -> Result<(), String> {
        match self.next() {
            Some(Tok::Op(o)) if o == op => Ok(()),
            _ => Err(self.err(&format!("expected `{op}`"))),
        }
    }

    fn conditional(&mut self) -> Result<i64, String> {
        let c = self.binary(1)?;
        if self.peek() == Some(&Tok::Op("?")) {
            self.pos += 1;
            let a = self.conditional()?;
            self.expect(":")?;
            let b = self.conditional()?;
            return Ok(if c != 0 { a } else { b });
        }
        Ok(c)
    }

    fn binary(&mut self, min: u8) -> Result<i64, String> {
        let mut lhs = self.unary()?;
        while let Some(Tok::Op(op)) = self.peek() {
            let op = *op;
            let Some(p) = binary_prec(op) else { break };
            if p < min {
                break;
            }
            self.pos += 1;
            let rhs = self.binary(p + 1)?;
            lhs = match op {
                "||" => ((lhs != 0) || (rhs != 0)) as i64,
                "&&" => ((lhs != 0) && (rhs != 0)) as i64,
                "|" => lhs | rhs,
                "^" => lhs ^ rhs,
                "&" => lhs & rhs,
                "==" => (lhs == rhs) as i64,
                "!=" => (lhs != rhs) as i64,
                "<" => (lhs < rhs) as i64,
                ">" => (lhs > rhs) as i64,
                "<=" => (lhs <= rhs) as i64,
                ">=" => (lhs >= rhs) as i64,
                "<<" => lhs.wrapping_shl(rhs as u32),
                ">>" => lhs.wrapping_shr(rhs as u32),
                "+" => lhs.wrapping_add(rhs),
                "-" => lhs.wrapping_sub(rhs),
                "*" => lhs.wrapping_mul(rhs),
                "/" | "%" if rhs == 0 => return Err(self.err("division by zero")),
                "/" => lhs / rhs,
                "%" => lhs % rhs,
                _ => unreachable!(),
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<i64, String> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(n),
            Some(Tok::Op("!")) => Ok((self.unary()? == 0) as i64),
            Some(Tok::Op("~")) => Ok(!self.unary()?),
            Some(Tok::Op("-")) => Ok(self.unary()?.wrapping_neg()),
            Some(Tok::Op("+")) => self.unary(),
            Some(Tok::Op("(")) => {
                let v = self.conditional()?;
                self.expect(")")?;
                Ok(v)
            }
            Some(Tok::Ident(id)) if id == "defined" => {
                let paren = self.peek() == Some(&Tok::Op("("));
                if paren {
                    self.pos += 1;
                }
                let name = match self.next() {
                    Some(Tok::Ident(n)) => n,
                    _ => return Err(self.err("expected a name after `defined`")),
                };
                if paren {
                    self.expect(")")?;
                }
                Ok(self.syms.value(&name).is_some() as i64)
            }
            Some(Tok::Ident(id)) => {
                // Function-like macros we know: LIBSEL4_BIT(n).
                if id == "LIBSEL4_BIT" || id == "BIT" {
                    self.expect("(")?;
                    let n = self.conditional()?;
                    self.expect(")")?;
                    return Ok(1i64 << n);
                }
                Ok(self.syms.value(&id).unwrap_or(0))
            }
            _ => Err(self.err("unexpected end or token")),
        }
    }
}

/// Evaluates a C preprocessor-style expression.
pub fn eval(text: &str, syms: &dyn Symbols) -> Result<i64, String> {
    let toks = lex(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        syms,
        text,
    };
    let v = p.conditional()?;
    if p.pos != p.toks.len() {
        return Err(p.err("trailing tokens"));
    }
    Ok(v)
}

/// Evaluates an XML `condition` attribute: empty means true.
pub fn holds(condition: &str, syms: &dyn Symbols) -> Result<bool, String> {
    if condition.trim().is_empty() {
        return Ok(true);
    }
    Ok(eval(condition, syms)? != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Map(BTreeMap<&'static str, i64>);
    impl Symbols for Map {
        fn value(&self, name: &str) -> Option<i64> {
            self.0.get(name).copied()
        }
    }

    #[test]
    fn evaluates_the_forms_the_xml_uses() {
        let m = Map([("CONFIG_MAX_NUM_NODES", 1), ("CONFIG_X", 1)]
            .into_iter()
            .collect());
        assert!(!holds("CONFIG_MAX_NUM_NODES > 1", &m).unwrap());
        assert!(holds("defined(CONFIG_X)", &m).unwrap());
        assert!(holds("defined CONFIG_X", &m).unwrap());
        assert!(!holds("defined(CONFIG_VTX)", &m).unwrap());
        assert!(holds("!defined(CONFIG_VTX) && (CONFIG_X || 0)", &m).unwrap());
        assert!(holds("", &m).unwrap());
        assert_eq!(eval("(1ul << 2) - 1", &m).unwrap(), 3);
        assert_eq!(eval("LIBSEL4_BIT(2)-1", &m).unwrap(), 3);
        assert_eq!(eval("0x10 + 010", &m).unwrap(), 24);
        assert!(eval("1 +", &m).is_err());
    }
}
