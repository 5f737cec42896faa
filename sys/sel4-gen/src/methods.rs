//! Emits one typed Rust method per invocation, marshalling exactly as
//! `syscall_stub_gen.py` does: caps after the invoked one become extra caps,
//! data parameters are bit-packed into message words, words 0..3 travel in
//! registers and the rest in the IPC buffer, and on error the register words
//! are written back to the IPC buffer.

use crate::interface::{input_words, positions, Kind, Method, Param, REGISTER_MRS, WORD_BITS};
use crate::names::{rust_ident, snake_case};
use std::fmt::Write;

/// The marker type (in `cap_type`) for an interface's C type.
pub fn cap_marker(c_type: &str) -> Result<&'static str, String> {
    Ok(match c_type {
        "seL4_Untyped" => "Untyped",
        "seL4_TCB" => "Tcb",
        "seL4_CNode" => "CNode",
        "seL4_IRQControl" => "IrqControl",
        "seL4_IRQHandler" => "IrqHandler",
        "seL4_DomainSet" => "Domain",
        "seL4_X86_IOPort" => "IoPort",
        "seL4_X86_ASIDControl" => "AsidControl",
        "seL4_X86_ASIDPool" => "AsidPool",
        "seL4_X86_IOSpace" => "IoSpace",
        "seL4_X86_Page" => "X86Page",
        "seL4_X64_PML4" => "X86Pml4",
        "seL4_X86_PDPT" => "X86Pdpt",
        "seL4_X86_PageDirectory" => "X86PageDirectory",
        "seL4_X86_PageTable" => "X86PageTable",
        "seL4_X86_IOPageTable" => "X86IoPageTable",
        "seL4_X86_VCPU" => "X86Vcpu",
        "seL4_X86_EPTPML4" => "X86EptPml4",
        "seL4_X86_EPTPDPT" => "X86EptPdpt",
        "seL4_X86_EPTPD" => "X86EptPd",
        "seL4_X86_EPTPT" => "X86EptPt",
        t => return Err(format!("no capability marker type for `{t}`")),
    })
}

/// The marker for a cap parameter: untyped `seL4_CPtr`/`seL4_CNode` parameters
/// are typed by what the kernel expects there (the XML types a VSpace root as
/// `seL4_CNode` or `seL4_CPtr`).
pub fn cap_param_marker(p: &Param) -> Result<&'static str, String> {
    if p.ty == "seL4_CPtr" || p.ty == "seL4_CNode" {
        let by_name = match p.name.as_str() {
            "vroot" | "vspace_root" => Some("X86Pml4"),
            "notification" => Some("Notification"),
            "bufferFrame" => Some("X86Page"),
            "vcpu" => Some("X86Vcpu"),
            "tcb" => Some("Tcb"),
            "ioPort" => Some("IoPort"),
            _ => None,
        };
        if let Some(m) = by_name {
            return Ok(m);
        }
        if p.ty == "seL4_CNode" {
            return Ok("CNode");
        }
        return Err(format!(
            "no capability type known for seL4_CPtr parameter `{}`",
            p.name
        ));
    }
    cap_marker(&p.ty)
}

fn rust_type(p: &Param) -> Result<String, String> {
    Ok(match &p.kind {
        Kind::Int { bits: 1, .. } => "bool".into(),
        Kind::Int { bits: 8, .. } => "u8".into(),
        Kind::Int { bits: 16, .. } => "u16".into(),
        Kind::Int { bits: 32, signed } => if *signed { "i32" } else { "u32" }.into(),
        Kind::Int {
            bits: 64,
            signed: true,
        } => "i64".into(),
        Kind::Int { bits: 64, .. } => "Word".into(),
        Kind::Int { bits, .. } => return Err(format!("{}: no Rust type for {bits} bits", p.name)),
        Kind::BitField => match p.ty.as_str() {
            "seL4_CapRights_t" => "CapRights".into(),
            "seL4_CapData_t" => "CapData".into(),
            "seL4_PrioProps_t" => "PrioProps".into(),
            t => return Err(format!("no Rust type for bitfield {t}")),
        },
        Kind::Cap => format!("Cap<cap_type::{}>", cap_param_marker(p)?),
        Kind::Struct(_) => p.ty.trim_start_matches("seL4_").to_string(),
    })
}

/// The expressions or-ed into each message word for the data inputs of `m`,
/// in word order (`generate_marshal_expressions`).
pub fn marshal(m: &Method) -> Vec<Vec<String>> {
    let data = m.data_inputs();
    let pos = positions(&data);
    let mut words: Vec<Vec<String>> = vec![Vec::new(); 128];
    for (p, at) in data.iter().zip(pos) {
        let name = rust_ident(&snake_case(&p.name));
        match &p.kind {
            Kind::Struct(members) => {
                for (i, member) in members.iter().enumerate() {
                    words[at.word() + i].push(format!("{name}.{}", rust_ident(member)));
                }
            }
            Kind::BitField => words[at.word()].push(format!("{name}.0")),
            Kind::Int {
                bits: 64,
                signed: false,
            } => words[at.word()].push(name),
            Kind::Int {
                bits: 64,
                signed: true,
            } => words[at.word()].push(format!("{name} as Word")),
            Kind::Int { bits, .. } => {
                let mut e = format!("(({name} as Word) & {:#x})", (1u64 << bits) - 1);
                if at.shift() != 0 {
                    e = format!("({e} << {})", at.shift());
                }
                words[at.word()].push(e);
            }
            Kind::Cap => unreachable!(),
        }
    }
    words.truncate(
        words
            .iter()
            .rposition(|w| !w.is_empty())
            .map_or(0, |i| i + 1),
    );
    words
}

fn source_word(i: usize) -> String {
    if i < REGISTER_MRS {
        format!("mrs[{i}]")
    } else {
        format!("crate::ipc::get_mr({i})")
    }
}

/// Expression reading output parameter `p` placed at `first_bit`.
fn unmarshal(p: &Param, first_bit: u32) -> Result<String, String> {
    let word = (first_bit / WORD_BITS) as usize;
    let shift = first_bit % WORD_BITS;
    Ok(match &p.kind {
        Kind::Struct(members) => {
            let ty = rust_type(p)?;
            let fields: Vec<String> = members
                .iter()
                .enumerate()
                .map(|(i, m)| format!("{}: {}", rust_ident(m), source_word(word + i)))
                .collect();
            format!("{ty} {{ {} }}", fields.join(", "))
        }
        Kind::Int {
            bits: 64,
            signed: false,
        } => source_word(word),
        Kind::Int {
            bits: 64,
            signed: true,
        } => format!("{} as i64", source_word(word)),
        Kind::Int { bits: 1, .. } => format!("(({} >> {shift}) & 0x1) != 0", source_word(word)),
        Kind::Int { bits, .. } => {
            let w = if shift == 0 {
                source_word(word)
            } else {
                format!("({} >> {shift})", source_word(word))
            };
            format!("({w} & {:#x}) as {}", (1u64 << bits) - 1, rust_type(p)?)
        }
        Kind::BitField => format!("{}::from_word({})", rust_type(p)?, source_word(word)),
        Kind::Cap => return Err(format!("{}: caps cannot be outputs", p.name)),
    })
}

/// Name of the struct returned by a method with several outputs.
pub fn output_struct_name(m: &Method) -> String {
    format!(
        "{}{}",
        m.interface.trim_start_matches("seL4_").replace('_', ""),
        m.name
    )
}

/// Rust method name: snake case of the C stub name without `seL4_`.
pub fn method_name(m: &Method) -> String {
    snake_case(m.c_name().trim_start_matches("seL4_"))
}

/// Emits the output struct (if any) and the method text for `m`.
pub fn emit_method(m: &Method, label: u32, structs: &mut String) -> Result<String, String> {
    let mut out = String::new();
    let fname = method_name(m);
    let mut args = vec!["&self".to_string()];
    for p in &m.inputs {
        let ty = rust_type(p)?;
        let ty = if matches!(p.kind, Kind::Struct(_)) {
            format!("&{ty}")
        } else {
            ty
        };
        args.push(format!("{}: {ty}", rust_ident(&snake_case(&p.name))));
    }
    let ret = match m.outputs.len() {
        0 => "()".to_string(),
        1 => rust_type(&m.outputs[0])?,
        _ => {
            let name = output_struct_name(m);
            let _ = writeln!(structs, "/// Results of `{}`.", m.c_name());
            let _ = writeln!(structs, "#[derive(Clone, Copy, Debug, PartialEq, Eq)]");
            let _ = writeln!(structs, "pub struct {name} {{");
            for p in &m.outputs {
                let _ = writeln!(structs, "    /// The `{}` output.", p.name);
                let _ = writeln!(
                    structs,
                    "    pub {}: {},",
                    rust_ident(&snake_case(&p.name)),
                    rust_type(p)?
                );
            }
            let _ = writeln!(structs, "}}\n");
            name
        }
    };
    let caps = m.cap_inputs();
    let words = marshal(m);
    let length = input_words(m);
    assert_eq!(length, words.len(), "{}: gaps in message words", m.id);
    let _ = writeln!(
        out,
        "    /// Wraps `{}` (invocation label `{}` = {label}).",
        m.c_name(),
        m.id
    );
    if !m.brief.is_empty() {
        let _ = writeln!(out, "    ///\n    /// {}", m.brief.replace('\n', " "));
    }
    let _ = writeln!(
        out,
        "    ///\n    /// Sends {length} message word(s) and {} extra cap(s); returns the kernel's error label on failure.",
        caps.len()
    );
    let _ = writeln!(out, "    #[inline]");
    let _ = writeln!(
        out,
        "    pub fn {fname}({}) -> Result<{ret}, Error> {{",
        args.join(", ")
    );
    let _ = writeln!(
        out,
        "        let info = MessageInfo::new(InvocationLabel::{} as Word, 0, {}, {length});",
        m.id,
        caps.len()
    );
    for (i, c) in caps.iter().enumerate() {
        let _ = writeln!(
            out,
            "        crate::ipc::set_cap({i}, {}.raw());",
            rust_ident(&snake_case(&c.name))
        );
    }
    let reg: Vec<String> = (0..REGISTER_MRS)
        .map(|i| {
            words
                .get(i)
                .map(|w| w.join(" | "))
                .unwrap_or_else(|| "0".into())
        })
        .collect();
    let _ = writeln!(
        out,
        "        let mut mrs: [Word; 4] = [{}];",
        reg.join(", ")
    );
    for (i, w) in words.iter().enumerate().skip(REGISTER_MRS) {
        let _ = writeln!(out, "        crate::ipc::set_mr({i}, {});", w.join(" | "));
    }
    let _ = writeln!(
        out,
        "        let reply = crate::syscall::call_with_mrs(self.raw(), info, &mut mrs);"
    );
    let _ = writeln!(out, "        crate::invocation_result(reply, &mrs)?;");
    if m.outputs.is_empty() {
        let _ = writeln!(out, "        Ok(())");
    } else {
        let outs: Vec<&Param> = m.outputs.iter().collect();
        let pos = positions(&outs);
        let exprs: Vec<String> = outs
            .iter()
            .zip(&pos)
            .map(|(p, at)| unmarshal(p, at.first_bit))
            .collect::<Result<_, _>>()?;
        if outs.len() == 1 {
            let _ = writeln!(out, "        Ok({})", exprs[0]);
        } else {
            let fields: Vec<String> = outs
                .iter()
                .zip(&exprs)
                .map(|(p, e)| format!("{}: {e}", rust_ident(&snake_case(&p.name))))
                .collect();
            let _ = writeln!(out, "        Ok({} {{ {} }})", ret, fields.join(", "));
        }
    }
    let _ = writeln!(out, "    }}\n");
    Ok(out)
}
