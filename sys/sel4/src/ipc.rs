//! The calling thread's IPC buffer, reached through the GS segment.
//!
//! On x86_64 seL4 5.0 points each thread's GS base at that thread's IPC buffer,
//! so these accessors are per thread and need no global. Start-up code (`rt`)
//! stores the buffer's own address in its `user_data` word with
//! [`set_user_data`] so that [`ipc_buffer`] can return a reference to it.

use crate::consts::{MSG_MAX_EXTRA_CAPS, MSG_MAX_LENGTH};
use crate::{CPtr, IpcBuffer, Word};
use core::arch::asm;
use core::mem::offset_of;

const MSG: usize = offset_of!(IpcBuffer, msg);
const USER_DATA: usize = offset_of!(IpcBuffer, user_data);
const CAPS: usize = offset_of!(IpcBuffer, caps_or_badges);
const RECEIVE_CNODE: usize = offset_of!(IpcBuffer, receive_cnode);
const RECEIVE_INDEX: usize = offset_of!(IpcBuffer, receive_index);
const RECEIVE_DEPTH: usize = offset_of!(IpcBuffer, receive_depth);

/// Writes message register `i` (panics if `i >= MSG_MAX_LENGTH`).
#[inline]
pub fn set_mr(i: usize, w: Word) {
    assert!(
        i < MSG_MAX_LENGTH as usize,
        "message register {i} out of range"
    );
    // SAFETY: GS points at this thread's IPC buffer (crate invariant) and `i` is in
    // bounds of `msg`; the buffer is not Rust-visible memory unless someone holds
    // the `&mut` from `ipc_buffer`, whose contract forbids overlapping use.
    unsafe {
        asm!("mov qword ptr gs:[{i}*8 + {off}], {w}", i = in(reg) i, w = in(reg) w,
             off = const MSG, options(nostack, preserves_flags));
    }
}

/// Reads message register `i` (panics if `i >= MSG_MAX_LENGTH`).
#[inline]
pub fn get_mr(i: usize) -> Word {
    assert!(
        i < MSG_MAX_LENGTH as usize,
        "message register {i} out of range"
    );
    let w: Word;
    // SAFETY: as in `set_mr`; a read of an in-bounds word of the IPC buffer.
    unsafe {
        asm!("mov {w}, qword ptr gs:[{i}*8 + {off}]", i = in(reg) i, w = out(reg) w,
             off = const MSG, options(nostack, preserves_flags, readonly));
    }
    w
}

/// Sets extra-capability slot `i` of the next message (panics if `i >= MSG_MAX_EXTRA_CAPS`).
#[inline]
pub fn set_cap(i: usize, cptr: CPtr) {
    assert!(
        i < MSG_MAX_EXTRA_CAPS as usize,
        "extra cap {i} out of range"
    );
    // SAFETY: as in `set_mr`, for the in-bounds word `caps_or_badges[i]`.
    unsafe {
        asm!("mov qword ptr gs:[{i}*8 + {off}], {w}", i = in(reg) i, w = in(reg) cptr,
             off = const CAPS, options(nostack, preserves_flags));
    }
}

/// Reads `caps_or_badges[i]`: the badge of an unwrapped received cap (panics if out of range).
#[inline]
pub fn get_badge(i: usize) -> Word {
    assert!(
        i < MSG_MAX_EXTRA_CAPS as usize,
        "extra cap {i} out of range"
    );
    let w: Word;
    // SAFETY: as in `get_mr`, for the in-bounds word `caps_or_badges[i]`.
    unsafe {
        asm!("mov {w}, qword ptr gs:[{i}*8 + {off}]", i = in(reg) i, w = out(reg) w,
             off = const CAPS, options(nostack, preserves_flags, readonly));
    }
    w
}

macro_rules! word_field {
    ($(#[$doc:meta])* $get:ident, $(#[$sdoc:meta])* $set:ident, $off:expr) => {
        $(#[$doc])*
        #[inline]
        pub fn $get() -> Word {
            let w: Word;
            // SAFETY: GS points at this thread's IPC buffer (crate invariant); one
            // in-bounds word is read.
            unsafe {
                asm!("mov {w}, qword ptr gs:[{off}]", w = out(reg) w, off = const $off,
                     options(nostack, preserves_flags, readonly));
            }
            w
        }
        $(#[$sdoc])*
        #[inline]
        pub fn $set(w: Word) {
            // SAFETY: GS points at this thread's IPC buffer (crate invariant); one
            // in-bounds word is written.
            unsafe {
                asm!("mov qword ptr gs:[{off}], {w}", w = in(reg) w, off = const $off,
                     options(nostack, preserves_flags));
            }
        }
    };
}

word_field!(
    /// The buffer's `user_data` word (by convention: the buffer's own address).
    user_data,
    /// Sets `user_data`; `rt` stores the IPC buffer's own address here at thread start.
    set_user_data,
    USER_DATA
);
word_field!(
    /// The CNode receive slots are looked up in (`receiveCNode`).
    receive_cnode,
    /// Sets `receiveCNode`.
    set_receive_cnode,
    RECEIVE_CNODE
);
word_field!(
    /// The receive slot's index (`receiveIndex`).
    receive_index,
    /// Sets `receiveIndex`.
    set_receive_index,
    RECEIVE_INDEX
);
word_field!(
    /// The receive slot's depth (`receiveDepth`).
    receive_depth,
    /// Sets `receiveDepth`.
    set_receive_depth,
    RECEIVE_DEPTH
);

/// Sets where a capability received in the next message is stored.
#[inline]
pub fn set_receive_path(cnode: CPtr, index: CPtr, depth: Word) {
    set_receive_cnode(cnode);
    set_receive_index(index);
    set_receive_depth(depth);
}

/// The calling thread's IPC buffer, found through the address `rt` stored in
/// its `user_data` word.
///
/// # Safety
/// Start-up code must have stored the buffer's address with [`set_user_data`],
/// and the caller must not hold another reference to the buffer (nor call
/// functions of this module, which access it through GS) while using the result.
pub unsafe fn ipc_buffer() -> &'static mut IpcBuffer {
    let p = user_data() as *mut IpcBuffer;
    // SAFETY: by the contract above `p` is this thread's mapped, aligned IPC
    // buffer and no other reference to it is live.
    unsafe { &mut *p }
}
