//! Just enough of C to read libsel4's headers: comments, `#if`/`#ifdef` blocks
//! (evaluated against the kernel configuration), object-like `#define`s,
//! `enum { ... }` bodies and `typedef struct { ... } name;` layouts.

use crate::cond::{self, Symbols};
use kernel_support::Resolved;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// One field of a C struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The C type name (pointers end in `*`).
    pub ty: String,
    /// The field name.
    pub name: String,
    /// Array length expression, if an array.
    pub array: Option<String>,
}

/// A `typedef struct` found in a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Struct {
    /// The typedef name.
    pub name: String,
    /// Fields in order.
    pub fields: Vec<Field>,
    /// Whether it was declared `SEL4_PACKED`.
    pub packed: bool,
}

/// A C enum: its typedef name (if any) and its constants with their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enum {
    /// The name after the closing brace (typedef), or the tag, if any.
    pub name: Option<String>,
    /// Constants in order.
    pub entries: Vec<(String, i64)>,
}

/// Everything read from a set of headers, in the order they were read.
pub struct Scope<'c> {
    config: &'c Resolved,
    /// Enum constants by name.
    pub constants: BTreeMap<String, i64>,
    /// Raw `#define` bodies by name.
    pub defines: BTreeMap<String, String>,
    /// Enums in reading order.
    pub enums: Vec<Enum>,
    /// Structs in reading order.
    pub structs: Vec<Struct>,
    depth: RefCell<u32>,
}

impl Symbols for Scope<'_> {
    fn value(&self, name: &str) -> Option<i64> {
        if let Some(v) = self.constants.get(name) {
            return Some(*v);
        }
        if let Some(body) = self.defines.get(name) {
            if *self.depth.borrow() > 16 {
                return None;
            }
            *self.depth.borrow_mut() += 1;
            let v = if body.trim().is_empty() {
                Some(1)
            } else {
                cond::eval(body, self).ok()
            };
            *self.depth.borrow_mut() -= 1;
            return v;
        }
        self.config.value(name)
    }
}

fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("/*") {
            let end = r.find("*/").map(|e| e + 2).unwrap_or(r.len());
            // Keep line structure for the preprocessor.
            out.extend(r[..end].chars().filter(|&c| c == '\n'));
            out.push(' ');
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("//") {
            let end = r.find('\n').unwrap_or(r.len());
            rest = &r[end..];
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out.replace("\\\n", " ")
}

impl<'c> Scope<'c> {
    /// An empty scope resolving `CONFIG_*` names from `config`.
    pub fn new(config: &'c Resolved) -> Self {
        Scope {
            config,
            constants: BTreeMap::new(),
            defines: BTreeMap::new(),
            enums: Vec::new(),
            structs: Vec::new(),
            depth: RefCell::new(0),
        }
    }

    /// Evaluates an expression in this scope.
    pub fn eval(&self, expr: &str) -> Result<i64, String> {
        cond::eval(expr, self)
    }

    /// Runs the preprocessor over `text`, returning the active non-directive
    /// lines and recording `#define`s.
    pub fn preprocess(&mut self, text: &str, origin: &str) -> Result<String, String> {
        let text = strip_comments(text);
        // Stack of (this branch active, some branch taken, parent active).
        let mut stack: Vec<(bool, bool, bool)> = Vec::new();
        let mut out = String::new();
        for line in text.lines() {
            let active = stack.last().map(|s| s.0).unwrap_or(true);
            let t = line.trim();
            let Some(d) = t.strip_prefix('#') else {
                if active {
                    out.push_str(line);
                }
                out.push('\n');
                continue;
            };
            out.push('\n');
            let d = d.trim_start();
            let (word, rest) = d.split_once(char::is_whitespace).unwrap_or((d, ""));
            let rest = rest.trim();
            let err = |e: String| format!("{origin}: {e}");
            match word {
                "if" | "ifdef" | "ifndef" => {
                    let v = if !active {
                        false
                    } else {
                        match word {
                            "if" => self.eval(rest).map_err(err)? != 0,
                            "ifdef" => self.value(rest).is_some(),
                            _ => self.value(rest).is_none(),
                        }
                    };
                    stack.push((active && v, v, active));
                }
                "elif" => {
                    let (_, taken, parent) =
                        stack.pop().ok_or_else(|| err("#elif without #if".into()))?;
                    let v = !taken && parent && self.eval(rest).map_err(err)? != 0;
                    stack.push((v, taken || v, parent));
                }
                "else" => {
                    let (_, taken, parent) =
                        stack.pop().ok_or_else(|| err("#else without #if".into()))?;
                    stack.push((parent && !taken, true, parent));
                }
                "endif" => {
                    stack
                        .pop()
                        .ok_or_else(|| err("#endif without #if".into()))?;
                }
                "define" if active => {
                    let (name, body) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    if !name.contains('(') {
                        self.defines
                            .insert(name.to_string(), body.trim().to_string());
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Reads one header: defines, enums and structs become part of the scope.
    pub fn read(&mut self, text: &str, origin: &str) -> Result<(), String> {
        let body = self.preprocess(text, origin)?;
        let toks = tokens(&body);
        let mut i = 0;
        while i < toks.len() {
            if toks[i] == "enum" {
                i = self.parse_enum(&toks, i + 1, origin)?;
            } else if toks[i] == "struct" && i > 0 && toks[i - 1] == "typedef" {
                i = self.parse_struct(&toks, i + 1, origin)?;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    fn parse_enum(&mut self, toks: &[String], mut i: usize, origin: &str) -> Result<usize, String> {
        let mut name = None;
        if i < toks.len() && toks[i] != "{" {
            name = Some(toks[i].clone());
            i += 1;
        }
        if toks.get(i).map(String::as_str) != Some("{") {
            return Ok(i); // `enum foo bar;` use, not a definition.
        }
        i += 1;
        let mut entries = Vec::new();
        let mut next = 0i64;
        while i < toks.len() && toks[i] != "}" {
            let start = i;
            let mut depth = 0;
            while i < toks.len() && !(depth == 0 && (toks[i] == "," || toks[i] == "}")) {
                match toks[i].as_str() {
                    "(" => depth += 1,
                    ")" => depth -= 1,
                    _ => {}
                }
                i += 1;
            }
            let item = &toks[start..i];
            if toks.get(i).map(String::as_str) == Some(",") {
                i += 1;
            }
            if item.is_empty() || item[0] == "SEL4_FORCE_LONG_ENUM" {
                continue;
            }
            let ident = item[0].clone();
            let value = if item.len() > 2 && item[1] == "=" {
                self.eval(&item[2..].join(" "))
                    .map_err(|e| format!("{origin}: {ident}: {e}"))?
            } else {
                next
            };
            self.constants.insert(ident.clone(), value);
            entries.push((ident, value));
            next = value + 1;
        }
        i += 1;
        if let Some(t) = toks.get(i) {
            if t != ";" && t.chars().all(|c| c.is_alphanumeric() || c == '_') {
                name = Some(t.clone());
            }
        }
        self.enums.push(Enum { name, entries });
        Ok(i)
    }

    fn parse_struct(
        &mut self,
        toks: &[String],
        mut i: usize,
        origin: &str,
    ) -> Result<usize, String> {
        while i < toks.len() && toks[i] != "{" {
            i += 1;
        }
        i += 1;
        let mut fields = Vec::new();
        while i < toks.len() && toks[i] != "}" {
            let start = i;
            while i < toks.len() && toks[i] != ";" {
                i += 1;
            }
            let decl = &toks[start..i];
            i += 1;
            // type tokens, then `name [arr]` groups separated by commas.
            let mut ty = decl[0].clone();
            let mut j = 1;
            while j < decl.len() && decl[j] == "*" {
                ty.push('*');
                j += 1;
            }
            for group in decl[j..].split(|t| t == ",") {
                let mut g = group.iter().peekable();
                let mut fty = ty.clone();
                while g.peek().map(|t| t.as_str()) == Some("*") {
                    fty.push('*');
                    g.next();
                }
                let name = g
                    .next()
                    .ok_or_else(|| format!("{origin}: field without a name"))?
                    .clone();
                let rest: Vec<&String> = g.collect();
                let array = if rest.first().map(|t| t.as_str()) == Some("[") {
                    Some(
                        rest[1..rest.len() - 1]
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                    )
                } else {
                    None
                };
                fields.push(Field {
                    ty: fty.clone(),
                    name,
                    array,
                });
            }
        }
        i += 1;
        let mut packed = false;
        let mut name = String::new();
        let mut depth = 0;
        while i < toks.len() && !(depth == 0 && toks[i] == ";") {
            match toks[i].as_str() {
                "(" => depth += 1,
                ")" => depth -= 1,
                "SEL4_PACKED" => packed = true,
                "__attribute__" => {}
                t if depth == 0
                    && name.is_empty()
                    && t.chars().all(|c| c.is_alphanumeric() || c == '_') =>
                {
                    name = t.to_string()
                }
                _ => {}
            }
            i += 1;
        }
        self.structs.push(Struct {
            name,
            fields,
            packed,
        });
        Ok(i)
    }

    /// The enum named `name` (typedef or tag).
    pub fn enum_named(&self, name: &str) -> Option<&Enum> {
        self.enums.iter().find(|e| e.name.as_deref() == Some(name))
    }

    /// The enum containing the constant `first`.
    pub fn enum_with(&self, first: &str) -> Option<&Enum> {
        self.enums
            .iter()
            .find(|e| e.entries.iter().any(|(n, _)| n == first))
    }

    /// The struct named `name`.
    pub fn struct_named(&self, name: &str) -> Option<&Struct> {
        self.structs.iter().find(|s| s.name == name)
    }
}

/// Splits C text into identifiers/numbers and single punctuation tokens.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' {
            cur.push(c);
            continue;
        }
        if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if !c.is_whitespace() {
            // Join two-character operators used in enum values.
            if let Some(last) = out.last_mut() {
                if (last == "<" && c == '<') || (last == ">" && c == '>') {
                    last.push(c);
                    continue;
                }
            }
            out.push(c.to_string());
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
