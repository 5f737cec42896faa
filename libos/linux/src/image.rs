//! The ELF64 load plan: which bytes of a Linux executable (or its interpreter) go where,
//! with what protection, and what the auxiliary vector must say about it.
//!
//! A plan is pure data; carrying it out (mapping pages, copying bytes, rewriting
//! `syscall` instructions in the executable ones) is the caller's. Everything read from
//! the file is checked: offsets and sizes within the file, `filesz <= memsz`, no
//! address arithmetic that wraps, segments in ascending order without overlap, the entry
//! inside an executable segment.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use elf::abi::{
    EM_X86_64, ET_DYN, ET_EXEC, PF_R, PF_W, PF_X, PT_GNU_STACK, PT_INTERP, PT_LOAD, PT_PHDR, PT_TLS,
};
use elf::endian::LittleEndian;
use elf::ElfBytes;

/// Page size of the plan (x86_64's small page).
pub const PAGE: u64 = 4096;
/// Size of one ELF64 program header (`AT_PHENT`).
pub const PHENT: u64 = 56;
/// Most program headers a file may have (Linux refuses more than 64 KiB of them).
pub const MAX_PHNUM: usize = 1024;
/// Longest interpreter path accepted.
pub const MAX_INTERP: usize = 4096;
/// Highest address a user mapping may reach (the lower canonical half).
pub const USER_LIMIT: u64 = 0x0000_8000_0000_0000;

/// Why a file cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    /// Not an ELF file (bad magic, or headers the parser refuses).
    NotElf,
    /// An ELF file, but not a 64-bit little-endian x86_64 one.
    NotX86_64,
    /// Neither `ET_EXEC` nor `ET_DYN` (an object file, a core dump).
    NotExecutable,
    /// Program headers missing, too many, or of the wrong entry size.
    BadProgramHeaders,
    /// A segment's bytes lie outside the file, `filesz > memsz`, or its address wraps.
    BadSegment,
    /// Loadable segments overlap, are out of order, or reach past the user half.
    OutOfRange,
    /// No loadable segment, or the entry point is not in an executable one.
    NoEntry,
    /// `PT_INTERP` is malformed (not NUL-terminated, empty, too long, not UTF-8).
    BadInterpreter,
    /// More than one `PT_INTERP` or `PT_TLS`.
    Duplicate,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self {
            ImageError::NotElf => "not an ELF file",
            ImageError::NotX86_64 => "not a 64-bit little-endian x86_64 ELF file",
            ImageError::NotExecutable => "not an executable or shared object",
            ImageError::BadProgramHeaders => "bad program headers",
            ImageError::BadSegment => "a segment lies outside the file or wraps",
            ImageError::OutOfRange => "segments overlap or leave the user address range",
            ImageError::NoEntry => "no loadable code at the entry point",
            ImageError::BadInterpreter => "malformed PT_INTERP",
            ImageError::Duplicate => "duplicate PT_INTERP or PT_TLS",
        };
        f.write_str(why)
    }
}

/// Page protection (`PROT_*` bits as Linux numbers them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prot(pub u32);

impl Prot {
    /// `PROT_READ`.
    pub const READ: u32 = 1;
    /// `PROT_WRITE`.
    pub const WRITE: u32 = 2;
    /// `PROT_EXEC`.
    pub const EXEC: u32 = 4;
    /// Whether the pages may be read.
    pub fn read(self) -> bool {
        self.0 & Self::READ != 0
    }
    /// Whether the pages may be written.
    pub fn write(self) -> bool {
        self.0 & Self::WRITE != 0
    }
    /// Whether the pages may be executed.
    pub fn exec(self) -> bool {
        self.0 & Self::EXEC != 0
    }
}

/// Whether the file is fixed-address or position-independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `ET_EXEC`: loaded at the addresses it names.
    Fixed,
    /// `ET_DYN`: a position-independent executable or shared object, loaded at a base.
    PositionIndependent,
}

/// One loadable segment, at its final address (the load bias applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Address of the segment's first byte.
    pub vaddr: u64,
    /// Bytes in memory (the part past `file_len` is zero: `.bss`).
    pub mem_len: u64,
    /// Offset of the segment's bytes in the file.
    pub file_offset: u64,
    /// Bytes copied from the file.
    pub file_len: u64,
    /// Protection once loaded.
    pub prot: Prot,
}

impl Segment {
    /// The page-aligned range of addresses the segment occupies: `[start, end)`.
    pub fn pages(&self) -> (u64, u64) {
        let start = self.vaddr & !(PAGE - 1);
        let end = (self.vaddr + self.mem_len).div_ceil(PAGE) * PAGE;
        (start, end)
    }
}

/// The thread-local storage template (`PT_TLS`), at its final address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tls {
    /// Address of the initialised part.
    pub vaddr: u64,
    /// Initialised bytes.
    pub file_len: u64,
    /// Whole block, initialised plus zeroed.
    pub mem_len: u64,
    /// Required alignment.
    pub align: u64,
}

/// Where everything of one ELF file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Fixed-address or position-independent.
    pub kind: Kind,
    /// What was added to every address in the file (0 for [`Kind::Fixed`]).
    pub bias: u64,
    /// Entry point, biased.
    pub entry: u64,
    /// Address of the program headers in memory (`AT_PHDR`), if they are loaded.
    pub phdr: Option<u64>,
    /// Number of program headers (`AT_PHNUM`).
    pub phnum: u64,
    /// Loadable segments in ascending address order.
    pub segments: Vec<Segment>,
    /// The interpreter the file asks for (`PT_INTERP`), e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub interpreter: Option<String>,
    /// The TLS template, if any.
    pub tls: Option<Tls>,
    /// Whether `PT_GNU_STACK` asks for an executable stack.
    pub exec_stack: bool,
}

impl Image {
    /// Plans `file` at `base` (used only for position-independent files, page-aligned;
    /// fixed-address files load where they say).
    ///
    /// Fails with the reason when the file is not an x86_64 ELF executable or shared
    /// object, or anything in its headers is out of bounds.
    pub fn plan(file: &[u8], base: u64) -> Result<Image, ImageError> {
        if file.len() < 64 || &file[..4] != b"\x7fELF" {
            return Err(ImageError::NotElf);
        }
        // Class (ELF64) and data (little-endian) before the parser's own checks.
        if file[4] != 2 || file[5] != 1 {
            return Err(ImageError::NotX86_64);
        }
        let elf = ElfBytes::<LittleEndian>::minimal_parse(file).map_err(|_| ImageError::NotElf)?;
        let header = elf.ehdr;
        if header.e_machine != EM_X86_64 {
            return Err(ImageError::NotX86_64);
        }
        let kind = match header.e_type {
            ET_EXEC => Kind::Fixed,
            ET_DYN => Kind::PositionIndependent,
            _ => return Err(ImageError::NotExecutable),
        };
        if header.e_phentsize as u64 != PHENT && header.e_phnum != 0 {
            return Err(ImageError::BadProgramHeaders);
        }
        let table = elf.segments().ok_or(ImageError::BadProgramHeaders)?;
        if table.is_empty() || table.len() > MAX_PHNUM {
            return Err(ImageError::BadProgramHeaders);
        }
        let bias = match kind {
            Kind::Fixed => 0,
            Kind::PositionIndependent => base & !(PAGE - 1),
        };
        let at = |vaddr: u64| vaddr.checked_add(bias).ok_or(ImageError::OutOfRange);
        let mut segments: Vec<Segment> = Vec::new();
        let mut interpreter = None;
        let mut tls = None;
        let mut exec_stack = false;
        let mut phdr_segment = None;
        for header in table.iter() {
            let in_file = header
                .p_offset
                .checked_add(header.p_filesz)
                .is_some_and(|end| end <= file.len() as u64);
            match header.p_type {
                PT_LOAD => {
                    if !in_file || header.p_filesz > header.p_memsz {
                        return Err(ImageError::BadSegment);
                    }
                    let vaddr = at(header.p_vaddr)?;
                    let end = vaddr
                        .checked_add(header.p_memsz)
                        .ok_or(ImageError::BadSegment)?;
                    if end > USER_LIMIT {
                        return Err(ImageError::OutOfRange);
                    }
                    if let Some(last) = segments.last() {
                        if vaddr < last.vaddr + last.mem_len {
                            return Err(ImageError::OutOfRange);
                        }
                    }
                    let mut prot = 0;
                    if header.p_flags & PF_R != 0 {
                        prot |= Prot::READ;
                    }
                    if header.p_flags & PF_W != 0 {
                        prot |= Prot::WRITE;
                    }
                    if header.p_flags & PF_X != 0 {
                        prot |= Prot::EXEC;
                    }
                    segments.push(Segment {
                        vaddr,
                        mem_len: header.p_memsz,
                        file_offset: header.p_offset,
                        file_len: header.p_filesz,
                        prot: Prot(prot),
                    });
                }
                PT_INTERP => {
                    if !in_file || interpreter.is_some() {
                        return Err(if in_file {
                            ImageError::Duplicate
                        } else {
                            ImageError::BadInterpreter
                        });
                    }
                    let bytes = &file[header.p_offset as usize..][..header.p_filesz as usize];
                    let path = match bytes.split_last() {
                        Some((0, path)) if !path.is_empty() && path.len() <= MAX_INTERP => path,
                        _ => return Err(ImageError::BadInterpreter),
                    };
                    if path.contains(&0) {
                        return Err(ImageError::BadInterpreter);
                    }
                    let path =
                        core::str::from_utf8(path).map_err(|_| ImageError::BadInterpreter)?;
                    interpreter = Some(String::from(path));
                }
                PT_TLS => {
                    if tls.is_some() {
                        return Err(ImageError::Duplicate);
                    }
                    if header.p_filesz > header.p_memsz {
                        return Err(ImageError::BadSegment);
                    }
                    tls = Some(Tls {
                        vaddr: at(header.p_vaddr)?,
                        file_len: header.p_filesz,
                        mem_len: header.p_memsz,
                        align: header.p_align.max(1),
                    });
                }
                PT_GNU_STACK => exec_stack = header.p_flags & PF_X != 0,
                PT_PHDR => phdr_segment = Some(at(header.p_vaddr)?),
                _ => {}
            }
        }
        if segments.is_empty() {
            return Err(ImageError::NoEntry);
        }
        let entry = at(header.e_entry)?;
        let entry_ok = segments
            .iter()
            .any(|s| s.prot.exec() && entry >= s.vaddr && entry < s.vaddr + s.mem_len);
        if !entry_ok {
            return Err(ImageError::NoEntry);
        }
        // Where the program headers are in memory: PT_PHDR if present, else the loaded
        // segment whose file bytes include them (as Linux's loader finds them).
        let phdr = phdr_segment.or_else(|| {
            let start = header.e_phoff;
            let end = start.checked_add(table.len() as u64 * PHENT)?;
            segments
                .iter()
                .find(|s| start >= s.file_offset && end <= s.file_offset + s.file_len)
                .map(|s| s.vaddr + (start - s.file_offset))
        });
        Ok(Image {
            kind,
            bias,
            entry,
            phdr,
            phnum: table.len() as u64,
            segments,
            interpreter,
            tls,
            exec_stack,
        })
    }

    /// The page-aligned span all loadable segments cover, biased: `[start, end)`.
    pub fn span(&self) -> (u64, u64) {
        let start = self.segments.first().map(|s| s.pages().0).unwrap_or(0);
        let end = self.segments.last().map(|s| s.pages().1).unwrap_or(0);
        (start, end)
    }

    /// Bytes of address space the segments need from their first page to their last.
    pub fn span_len(&self) -> u64 {
        let (start, end) = self.span();
        end - start
    }
}

/// A program and, if it asks for one, its interpreter: what `execve` loads before the
/// first instruction runs, and the addresses the auxiliary vector reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecPlan {
    /// The program.
    pub program: Image,
    /// The interpreter, loaded at [`ExecPlan::interpreter_base`].
    pub interpreter: Option<Image>,
}

impl ExecPlan {
    /// Plans `program` (position-independent ones at `program_base`) and, when it names
    /// one, `interpreter` at `interpreter_base`; `interpreter` is asked for the file the
    /// program's `PT_INTERP` names and returns its bytes, or `None` when it is missing.
    ///
    /// Fails naming which file and why: the program's problem, a missing interpreter, the
    /// interpreter's own problem (an interpreter that asks for an interpreter is refused),
    /// or an interpreter that would overlap the program.
    pub fn plan<'f>(
        program: &[u8],
        program_base: u64,
        interpreter_base: u64,
        interpreter: impl FnOnce(&str) -> Option<&'f [u8]>,
    ) -> Result<ExecPlan, ExecError> {
        let program = Image::plan(program, program_base).map_err(ExecError::Program)?;
        let Some(path) = program.interpreter.clone() else {
            return Ok(ExecPlan {
                program,
                interpreter: None,
            });
        };
        let bytes = interpreter(&path).ok_or(ExecError::MissingInterpreter(path.clone()))?;
        let image = Image::plan(bytes, interpreter_base)
            .map_err(|e| ExecError::Interpreter(path.clone(), e))?;
        if image.interpreter.is_some() {
            return Err(ExecError::Interpreter(path, ImageError::BadInterpreter));
        }
        let (a, b) = (program.span(), image.span());
        if a.0 < b.1 && b.0 < a.1 {
            return Err(ExecError::Overlap);
        }
        Ok(ExecPlan {
            program,
            interpreter: Some(image),
        })
    }

    /// Where execution starts: the interpreter's entry if there is one, else the program's.
    pub fn start(&self) -> u64 {
        self.interpreter
            .as_ref()
            .map_or(self.program.entry, |i| i.entry)
    }

    /// `AT_BASE`: the interpreter's load address (0 without one).
    pub fn interpreter_base(&self) -> u64 {
        self.interpreter.as_ref().map_or(0, |i| i.span().0)
    }
}

/// Why [`ExecPlan::plan`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// The program itself is not loadable.
    Program(ImageError),
    /// The interpreter the program names is not in the file tree.
    MissingInterpreter(String),
    /// The interpreter (named) is not loadable.
    Interpreter(String, ImageError),
    /// The interpreter's base would put it over the program.
    Overlap,
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::Program(e) => write!(f, "{e}"),
            ExecError::MissingInterpreter(p) => write!(f, "interpreter {p} not found"),
            ExecError::Interpreter(p, e) => write!(f, "interpreter {p}: {e}"),
            ExecError::Overlap => f.write_str("the interpreter would overlap the program"),
        }
    }
}
