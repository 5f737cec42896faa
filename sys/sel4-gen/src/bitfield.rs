//! Reader for seL4's bitfield specifications (`*.bf`), with the layout rules of
//! `bitfield_gen.py`: fields are listed from the most significant bit down, the
//! last field ends at bit 0 of word 0, and a block spans `size / base` words.

use crate::header::Scope;

/// A field of a block: name, bit offset from bit 0 of word 0, width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfField {
    /// Field name as written in the spec.
    pub name: String,
    /// Offset of the field's lowest bit, counting from bit 0 of word 0.
    pub offset: u32,
    /// Width in bits.
    pub size: u32,
}

/// A `block`: a fixed layout of named fields in `size / base` words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Block name.
    pub name: String,
    /// Total size in bits.
    pub size: u32,
    /// Named fields (padding dropped).
    pub fields: Vec<BfField>,
}

impl Block {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&BfField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A `tagged_union`: blocks told apart by a tag field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedUnion {
    /// Union name.
    pub name: String,
    /// Name of the tag field shared by the member blocks.
    pub tag_field: String,
    /// `(block name, tag value)` in spec order.
    pub tags: Vec<(String, u64)>,
}

/// The contents of one or more `.bf` files.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Word size the spec declared with `base`.
    pub base: u32,
    /// Blocks in order.
    pub blocks: Vec<Block>,
    /// Tagged unions in order.
    pub unions: Vec<TaggedUnion>,
}

impl Spec {
    /// The block called `name`.
    pub fn block(&self, name: &str) -> Option<&Block> {
        self.blocks.iter().find(|b| b.name == name)
    }

    /// The tagged union called `name`.
    pub fn union(&self, name: &str) -> Option<&TaggedUnion> {
        self.unions.iter().find(|u| u.name == name)
    }

    /// Parses one `.bf` text (after preprocessing with `scope`) into this spec.
    pub fn read(&mut self, text: &str, origin: &str, scope: &mut Scope) -> Result<(), String> {
        let text: String = text
            .lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let text = scope.preprocess(&text, origin)?;
        let toks: Vec<&str> = text
            .split(|c: char| c.is_whitespace())
            .flat_map(split_braces)
            .filter(|t| !t.is_empty())
            .collect();
        let num = |t: Option<&&str>| -> Result<u64, String> {
            t.and_then(|t| t.parse().ok())
                .ok_or_else(|| format!("{origin}: expected a number"))
        };
        let mut i = 0;
        while i < toks.len() {
            match toks[i] {
                "base" => {
                    self.base = num(toks.get(i + 1))? as u32;
                    i += 2;
                }
                "block" => {
                    let name = toks[i + 1].to_string();
                    i += 3; // name {
                    let mut raw = Vec::new();
                    while toks[i] != "}" {
                        match toks[i] {
                            "field" | "field_high" => {
                                raw.push((
                                    Some(toks[i + 1].to_string()),
                                    num(toks.get(i + 2))? as u32,
                                ));
                                i += 3;
                            }
                            "padding" => {
                                raw.push((None, num(toks.get(i + 1))? as u32));
                                i += 2;
                            }
                            t => return Err(format!("{origin}: unexpected `{t}` in block {name}")),
                        }
                    }
                    i += 1;
                    let size: u32 = raw.iter().map(|r| r.1).sum();
                    let mut offset = size;
                    let mut fields = Vec::new();
                    for (n, s) in raw {
                        offset -= s;
                        if let Some(n) = n {
                            fields.push(BfField {
                                name: n,
                                offset,
                                size: s,
                            });
                        }
                    }
                    self.blocks.push(Block { name, size, fields });
                }
                "tagged_union" => {
                    let name = toks[i + 1].to_string();
                    let tag_field = toks[i + 2].to_string();
                    i += 4;
                    let mut tags = Vec::new();
                    while toks[i] != "}" {
                        if toks[i] != "tag" {
                            return Err(format!("{origin}: unexpected `{}` in {name}", toks[i]));
                        }
                        tags.push((toks[i + 1].to_string(), num(toks.get(i + 2))?));
                        i += 3;
                    }
                    i += 1;
                    self.unions.push(TaggedUnion {
                        name,
                        tag_field,
                        tags,
                    });
                }
                t => return Err(format!("{origin}: unexpected `{t}`")),
            }
        }
        Ok(())
    }
}

fn split_braces(t: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in t.char_indices() {
        if c == '{' || c == '}' {
            out.push(&t[start..i]);
            out.push(&t[i..i + 1]);
            start = i + 1;
        }
    }
    out.push(&t[start..]);
    out
}
