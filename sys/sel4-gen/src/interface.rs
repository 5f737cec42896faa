//! The interface XML (`sel4.xml`, `sel4arch.xml`) and `syscall.xml`: invocation
//! labels numbered as `invocation_header_gen.py` does, syscall numbers as
//! `syscall_header_gen.py` does, and method parameters placed in message words
//! as `syscall_stub_gen.py` does.

use crate::cond::{self, Symbols};

/// Word size of x86_64 in bits.
pub const WORD_BITS: u32 = 64;
/// Message registers passed in machine registers on x86_64.
pub const REGISTER_MRS: usize = 4;

/// How a parameter's C type travels in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An integer of this many bits (`seL4_Bool` is 1, `seL4_Uint8` 8, ...).
    Int {
        /// Bits used in the message.
        bits: u32,
        /// Whether C treats it as signed (`int`, `long`).
        signed: bool,
    },
    /// A one-word bitfield type (`seL4_CapRights_t`, ...): its `words[0]`.
    BitField,
    /// A capability: travels in the extra-caps slots (or is the invoked cap).
    Cap,
    /// A multi-word struct passed by reference: these member names, one word each.
    Struct(Vec<String>),
}

/// A parameter of a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Name as in the XML.
    pub name: String,
    /// C type name as in the XML.
    pub ty: String,
    /// Transport kind.
    pub kind: Kind,
}

impl Param {
    /// Size in message bits (`size_bits` in the stub generator).
    pub fn size_bits(&self) -> u32 {
        match &self.kind {
            Kind::Int { bits, .. } => *bits,
            Kind::BitField | Kind::Cap => WORD_BITS,
            Kind::Struct(m) => WORD_BITS * m.len() as u32,
        }
    }
}

/// Where a parameter sits in the message: first bit and width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// First bit, counting from bit 0 of message word 0.
    pub first_bit: u32,
    /// Width in bits.
    pub bits: u32,
}

impl Position {
    /// Message word holding the first bit.
    pub fn word(&self) -> usize {
        (self.first_bit / WORD_BITS) as usize
    }
    /// Bit offset inside that word.
    pub fn shift(&self) -> u32 {
        self.first_bit % WORD_BITS
    }
}

/// One invocation method of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// Interface (C type of the invoked cap), e.g. `seL4_X86_Page`.
    pub interface: String,
    /// Method name, e.g. `Map`.
    pub name: String,
    /// Invocation label name, e.g. `X86PageMap`.
    pub id: String,
    /// The `condition` attribute (empty if none).
    pub condition: String,
    /// Input parameters, without the invoked cap.
    pub inputs: Vec<Param>,
    /// Output parameters.
    pub outputs: Vec<Param>,
    /// The `<brief>` text, whitespace-normalised.
    pub brief: String,
}

impl Method {
    /// The C stub name, e.g. `seL4_X86_Page_Map`.
    pub fn c_name(&self) -> String {
        format!("{}_{}", self.interface, self.name)
    }
    /// Inputs that are message data (not caps).
    pub fn data_inputs(&self) -> Vec<&Param> {
        self.inputs.iter().filter(|p| p.kind != Kind::Cap).collect()
    }
    /// Inputs that travel as extra caps.
    pub fn cap_inputs(&self) -> Vec<&Param> {
        self.inputs.iter().filter(|p| p.kind == Kind::Cap).collect()
    }
}

/// `get_parameter_positions`: each parameter aligned to its own size or a word,
/// whichever is smaller, after the previous one.
pub fn positions(params: &[&Param]) -> Vec<Position> {
    let mut used = 0u32;
    let mut out = Vec::new();
    for p in params {
        let size = p.size_bits();
        assert!(
            size.is_power_of_two() || size % WORD_BITS == 0,
            "{}: odd size {size}",
            p.name
        );
        let align = size.min(WORD_BITS);
        used = used.div_ceil(align) * align;
        out.push(Position {
            first_bit: used,
            bits: size,
        });
        used += size;
    }
    out
}

/// Number of message words the data inputs of `m` fill (the `length` of the tag).
pub fn input_words(m: &Method) -> usize {
    let data = m.data_inputs();
    let pos = positions(&data);
    let mut words = [false; 128];
    for (p, at) in data.iter().zip(&pos) {
        let n = (p.size_bits().max(1)).div_ceil(WORD_BITS) as usize;
        words[at.word()..at.word() + n]
            .iter_mut()
            .for_each(|w| *w = true);
    }
    words.iter().filter(|&&x| x).count()
}

/// C type name to its transport kind, for x86_64 (`init_data_types` + the x86_64 arch types).
pub fn kind_of(ty: &str, structs: &[(String, Vec<String>)]) -> Option<Kind> {
    let int = |bits, signed| Some(Kind::Int { bits, signed });
    match ty {
        "int" => int(32, true),
        "long" => int(64, true),
        "seL4_Uint8" => int(8, false),
        "seL4_Uint16" => int(16, false),
        "seL4_Uint32" => int(32, false),
        "seL4_Uint64" | "seL4_Word" | "seL4_X86_VMAttributes" => int(64, false),
        "seL4_Bool" => int(1, false),
        "seL4_CapData_t" | "seL4_PrioProps_t" | "seL4_CapRights_t" => Some(Kind::BitField),
        "seL4_CPtr"
        | "seL4_CNode"
        | "seL4_IRQHandler"
        | "seL4_IRQControl"
        | "seL4_TCB"
        | "seL4_Untyped"
        | "seL4_DomainSet"
        | "seL4_X86_IOPort"
        | "seL4_X86_ASIDControl"
        | "seL4_X86_ASIDPool"
        | "seL4_X86_IOSpace"
        | "seL4_X86_Page"
        | "seL4_X64_PML4"
        | "seL4_X86_PDPT"
        | "seL4_X86_PageDirectory"
        | "seL4_X86_PageTable"
        | "seL4_X86_IOPageTable"
        | "seL4_X86_VCPU"
        | "seL4_X86_EPTPML4"
        | "seL4_X86_EPTPDPT"
        | "seL4_X86_EPTPD"
        | "seL4_X86_EPTPT" => Some(Kind::Cap),
        "seL4_UserContext" | "seL4_VCPUContext" => structs
            .iter()
            .find(|(n, _)| n == ty)
            .map(|(_, m)| Kind::Struct(m.clone())),
        _ => None,
    }
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Everything one interface XML file declares.
#[derive(Debug, Clone, Default)]
pub struct InterfaceFile {
    /// `(label id, condition)` for every `<method>` in document order.
    pub labels: Vec<(String, String)>,
    /// Methods in document order.
    pub methods: Vec<Method>,
    /// `<struct>` definitions: name and member names.
    pub structs: Vec<(String, Vec<String>)>,
}

/// Parses the `<struct>`s of an interface file (needed before its methods).
pub fn structs_of(xml: &str, origin: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("{origin}: {e}"))?;
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("struct"))
        .map(|s| {
            let members = s
                .descendants()
                .filter(|n| n.has_tag_name("member"))
                .map(|m| m.attribute("name").unwrap_or("").to_string())
                .collect();
            (s.attribute("name").unwrap_or("").to_string(), members)
        })
        .collect())
}

/// Parses an interface file; `structs` are all `<struct>`s known from every file.
pub fn parse_interfaces(
    xml: &str,
    origin: &str,
    structs: &[(String, Vec<String>)],
) -> Result<InterfaceFile, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("{origin}: {e}"))?;
    let mut out = InterfaceFile {
        structs: structs_of(xml, origin)?,
        ..Default::default()
    };
    for m in doc.descendants().filter(|n| n.has_tag_name("method")) {
        let id = m.attribute("id").unwrap_or("").to_string();
        let condition = m.attribute("condition").unwrap_or("").to_string();
        out.labels.push((id.clone(), condition.clone()));
        let interface = m
            .ancestors()
            .find(|a| a.has_tag_name("interface"))
            .and_then(|i| i.attribute("name"))
            .ok_or_else(|| format!("{origin}: method {id} outside an interface"))?
            .to_string();
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        for p in m.descendants().filter(|n| n.has_tag_name("param")) {
            let name = p.attribute("name").unwrap_or("").to_string();
            let ty = p.attribute("type").unwrap_or("").to_string();
            let kind = kind_of(&ty, structs)
                .ok_or_else(|| format!("{origin}: {id}: unknown type '{ty}'"))?;
            let param = Param { name, ty, kind };
            match p.attribute("dir") {
                Some("in") => inputs.push(param),
                Some("out") => outputs.push(param),
                d => return Err(format!("{origin}: {id}: bad dir {d:?}")),
            }
        }
        let brief = m
            .children()
            .find(|n| n.has_tag_name("brief"))
            .map(|b| normalise(&b.descendants().filter_map(|t| t.text()).collect::<String>()))
            .unwrap_or_default();
        out.methods.push(Method {
            interface,
            name: m.attribute("name").unwrap_or("").to_string(),
            id,
            condition,
            inputs,
            outputs,
            brief,
        });
    }
    Ok(out)
}

/// Numbers labels like the three generated `enum`s: `InvalidInvocation = 0`,
/// then the generic labels, then the `sel4_arch` ones from `nInvocationLabels`,
/// then the `arch` ones from `nSeL4ArchInvocationLabels`. Labels whose condition
/// is false are left out (they sit inside `#if`), so numbering stays dense.
pub fn number_labels(
    files: [&[(String, String)]; 3],
    syms: &dyn Symbols,
) -> Result<Vec<(String, u32)>, String> {
    let mut out = Vec::new();
    let mut next = 1u32;
    for (k, file) in files.iter().enumerate() {
        if k > 0 {
            // The template gives the *first listed* label `= n...Labels`; if that
            // one were compiled out the C enum would restart at 0. Refuse that case.
            if let Some((first, c)) = file.first() {
                if !cond::holds(c, syms)? {
                    return Err(format!("first arch label {first} is conditional and off"));
                }
            }
        }
        for (id, c) in file.iter() {
            if cond::holds(c, syms)? {
                out.push((id.clone(), next));
                next += 1;
            }
        }
    }
    Ok(out)
}

/// A syscall: name, number, and whether its `condition` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syscall {
    /// Name without `seL4_Sys`, e.g. `DebugPutChar`.
    pub name: String,
    /// Its (negative) number.
    pub number: i64,
    /// Whether its condition holds for this configuration.
    pub enabled: bool,
}

/// Numbers `syscall.xml` as `syscall_header_gen.py` does: from -1 down, api then
/// debug, counting every syscall (the `#if` only hides the name, the counter runs on).
pub fn syscalls(xml: &str, origin: &str, syms: &dyn Symbols) -> Result<Vec<Syscall>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("{origin}: {e}"))?;
    let mut out = Vec::new();
    let mut number = -1i64;
    for section in ["api", "debug"] {
        for sec in doc.descendants().filter(|n| n.has_tag_name(section)) {
            for config in sec.children().filter(|n| n.has_tag_name("config")) {
                let enabled = cond::holds(config.attribute("condition").unwrap_or(""), syms)?;
                for s in config.children().filter(|n| n.has_tag_name("syscall")) {
                    out.push(Syscall {
                        name: s.attribute("name").unwrap_or("").to_string(),
                        number,
                        enabled,
                    });
                    number -= 1;
                }
            }
        }
    }
    Ok(out)
}
