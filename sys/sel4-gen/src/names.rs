//! Name conversions from seL4's C spellings to Rust ones.

/// `seL4_X86_PageTable_Map` style (without `seL4_`) to `x86_page_table_map`.
///
/// Runs of capitals are one word (`IOPort` → `io_port`, `GetIOAPIC` →
/// `get_ioapic`), digits stay with what precedes them, and `CNode` is one word.
pub fn snake_case(name: &str) -> String {
    let name = name.replace("CNode", "Cnode");
    let mut out = String::new();
    for segment in name.split('_').filter(|s| !s.is_empty()) {
        if !out.is_empty() {
            out.push('_');
        }
        let c: Vec<char> = segment.chars().collect();
        for i in 0..c.len() {
            if c[i].is_ascii_uppercase() && i > 0 {
                let prev = c[i - 1];
                let next_lower = c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
                if prev.is_ascii_lowercase()
                    || prev.is_ascii_digit()
                    || (prev.is_ascii_uppercase() && next_lower)
                {
                    out.push('_');
                }
            }
            out.push(c[i].to_ascii_lowercase());
        }
    }
    out
}

/// `snake_case` in capitals, for constants: `MsgMaxLength` → `MSG_MAX_LENGTH`.
pub fn screaming(name: &str) -> String {
    snake_case(name).to_ascii_uppercase()
}

/// `x86_pdpt` → `X86Pdpt`.
pub fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// Escapes Rust keywords used as names (`type` → `type_`).
pub fn rust_ident(name: &str) -> String {
    match name {
        "type" | "in" | "ref" | "fn" | "mod" | "move" | "self" | "match" | "loop" | "use" => {
            format!("{name}_")
        }
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_names_become_snake_case() {
        assert_eq!(snake_case("X86_PageTable_Map"), "x86_page_table_map");
        assert_eq!(snake_case("TCB_SetPriority"), "tcb_set_priority");
        assert_eq!(snake_case("IRQControl_Get"), "irq_control_get");
        assert_eq!(snake_case("IRQControl_GetIOAPIC"), "irq_control_get_ioapic");
        assert_eq!(snake_case("X86_IOPort_In8"), "x86_io_port_in8");
        assert_eq!(snake_case("CNode_Copy"), "cnode_copy");
        assert_eq!(snake_case("TCB_SetIPCBuffer"), "tcb_set_ipc_buffer");
        assert_eq!(snake_case("X86_ASIDPool_Assign"), "x86_asid_pool_assign");
        assert_eq!(
            snake_case("initThreadCNodeSizeBits"),
            "init_thread_cnode_size_bits"
        );
        assert_eq!(snake_case("nodeID"), "node_id");
        assert_eq!(camel("x86_pdpt"), "X86Pdpt");
    }
}
