//! Program loading: ELF executables (static, static-PIE, dynamic with
//! PT_INTERP), `#!` scripts, and the initial stack with argv, envp and auxv.

use crate::abi::*;
use crate::kernel::task::Task;
use crate::mm::{Backing, MemoryManager, VmaKind};
use crate::vfs::file::File;
use crate::vfs::path::Walker;
use crate::vfs::Dentry;
use goblin::elf::header::{Header, ET_DYN, ET_EXEC};
use goblin::elf::program_header::{ProgramHeader, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};
use std::sync::Arc;

const MAX_INTERP_DEPTH: u32 = 4;
/// Stack size when RLIMIT_STACK is unlimited (Linux then also uses 8 MiB
/// for the initial mapping's growth budget in practice).
const DEFAULT_STACK: u64 = 8 << 20;

/// What exec produced: entry registers and the image's identity.
pub struct Loaded {
    pub entry: u64,
    pub sp: u64,
    pub exe: Arc<Dentry>,
    pub argv: Vec<Vec<u8>>,
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = crate::fs::dev::fill_random(&mut b);
    u64::from_le_bytes(b)
}

/// Open `path` for exec: must be a regular file the caller may execute.
fn open_exec(t: &Task, path: &[u8]) -> KResult<(Arc<Dentry>, Arc<File>)> {
    let d = Walker::new(t).walk(&t.cwd(), path, true)?;
    open_exec_dentry(t, d)
}

/// Opens an executable already found (execveat with AT_EMPTY_PATH names it
/// by a file descriptor, which may have no path at all, e.g. a memfd).
fn open_exec_dentry(t: &Task, d: Arc<Dentry>) -> KResult<(Arc<Dentry>, Arc<File>)> {
    let m = d.meta();
    if m.is_dir() {
        return Err(Errno::EACCES);
    }
    if !m.is_reg() || d.noexec() {
        return Err(Errno::EACCES);
    }
    t.may_access(&m, 1)?;
    let f = crate::syscalls::file::open_dentry(t, &d, O_RDONLY)?;
    Ok((d, f))
}

fn read_at(f: &File, off: u64, len: usize) -> KResult<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = f.pread(&mut buf[done..], off + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

/// The interpreter of a dynamic executable: file, headers, path, dev, ino.
type Interp = (Arc<File>, Elf, Vec<u8>, u64, u64);

struct Elf {
    header: Header,
    phdrs: Vec<ProgramHeader>,
}

fn parse_elf(f: &File) -> KResult<Elf> {
    parse_elf_with(|off, len| read_at(f, off, len))
}

/// Parse and check the ELF header and program headers of an untrusted
/// image, reading through `read(offset, len)` (short at end of file).
fn parse_elf_with(read: impl Fn(u64, usize) -> KResult<Vec<u8>>) -> KResult<Elf> {
    let head = read(0, 64)?;
    if head.len() < 64 || &head[..4] != b"\x7fELF" {
        return Err(Errno::ENOEXEC);
    }
    let header = goblin::elf::Elf::parse_header(&head).map_err(|_| Errno::ENOEXEC)?;
    if header.e_machine != goblin::elf::header::EM_X86_64
        || header.e_ident[goblin::elf::header::EI_CLASS] != goblin::elf::header::ELFCLASS64
        || (header.e_type != ET_EXEC && header.e_type != ET_DYN)
    {
        return Err(Errno::ENOEXEC);
    }
    let phnum = header.e_phnum as usize;
    if header.e_phentsize as usize
        != std::mem::size_of::<goblin::elf64::program_header::ProgramHeader>()
        || phnum == 0
        || phnum > 256
    {
        return Err(Errno::ENOEXEC);
    }
    let size = phnum * header.e_phentsize as usize;
    let raw = read(header.e_phoff, size)?;
    if raw.len() != size {
        return Err(Errno::ENOEXEC);
    }
    let ctx = goblin::container::Ctx::new(
        goblin::container::Container::Big,
        goblin::container::Endian::Little,
    );
    let phdrs = ProgramHeader::parse(&raw, 0, phnum, ctx).map_err(|_| Errno::ENOEXEC)?;
    Ok(Elf { header, phdrs })
}

/// The loader's checks on an in-memory image, for fuzzing: header, program
/// headers, and the span and alignment rules `load_segments` enforces.
/// Returns (ELF type, number of PT_LOAD segments, span in bytes).
pub fn check_image(image: &[u8]) -> KResult<(u16, usize, u64)> {
    let elf = parse_elf_with(|off, len| {
        let start = usize::try_from(off)
            .map_err(|_| Errno::ENOEXEC)?
            .min(image.len());
        let end = start.saturating_add(len).min(image.len());
        Ok(image[start..end].to_vec())
    })?;
    let loads: Vec<&ProgramHeader> = elf.phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    let (lo, span) = segment_span(&loads)?;
    let _ = lo;
    for p in &loads {
        if p.p_filesz > p.p_memsz || p.p_offset % PAGE_SIZE != p.p_vaddr % PAGE_SIZE {
            return Err(Errno::ENOEXEC);
        }
    }
    Ok((elf.header.e_type, loads.len(), span))
}

/// Lowest page and total page-rounded span of the PT_LOAD segments.
fn segment_span(loads: &[&ProgramHeader]) -> KResult<(u64, u64)> {
    if loads.is_empty() {
        return Err(Errno::ENOEXEC);
    }
    let lo = page_round_down(loads.iter().map(|p| p.p_vaddr).min().unwrap_or(0));
    let hi = loads
        .iter()
        .map(|p| p.p_vaddr.checked_add(p.p_memsz))
        .try_fold(0u64, |acc, e| e.map(|e| acc.max(e)))
        .ok_or(Errno::ENOEXEC)?;
    let span = page_round_up(hi)
        .ok_or(Errno::ENOEXEC)?
        .checked_sub(lo)
        .ok_or(Errno::ENOEXEC)?;
    if span == 0 || span > (1 << 36) {
        return Err(Errno::ENOEXEC);
    }
    Ok((lo, span))
}

fn prot_of(flags: u32) -> u32 {
    let mut p = 0;
    if flags & PF_R != 0 {
        p |= PROT_READ;
    }
    if flags & PF_W != 0 {
        p |= PROT_WRITE;
    }
    if flags & PF_X != 0 {
        p |= PROT_EXEC;
    }
    p
}

/// Map an ELF's PT_LOAD segments. Returns (bias, highest end).
fn load_segments(
    mm: &mut MemoryManager,
    f: &File,
    elf: &Elf,
    path: &[u8],
    dev: u64,
    ino: u64,
    fixed_bias: Option<u64>,
) -> KResult<(u64, u64)> {
    let loads: Vec<&ProgramHeader> = elf.phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    let (lo, span) = segment_span(&loads)?;
    let bias = if elf.header.e_type == ET_DYN {
        match fixed_bias {
            Some(b) => b,
            None => {
                // Reserve the whole span so the segments land contiguously.
                mm.find_free(span).ok_or(Errno::ENOMEM)?.wrapping_sub(lo)
            }
        }
    } else {
        0
    };
    let path_s = String::from_utf8_lossy(path).to_string();
    let mut end = 0;
    for p in loads {
        if p.p_filesz > p.p_memsz || p.p_offset % PAGE_SIZE != p.p_vaddr % PAGE_SIZE {
            return Err(Errno::ENOEXEC);
        }
        let start = page_round_down(bias.wrapping_add(p.p_vaddr));
        let seg_end = page_round_up(bias.wrapping_add(p.p_vaddr).wrapping_add(p.p_memsz))
            .ok_or(Errno::ENOEXEC)?;
        if seg_end <= start {
            continue;
        }
        let prot = prot_of(p.p_flags);
        mm.mmap(
            start,
            seg_end - start,
            prot,
            false,
            true,
            false,
            Backing::Bytes {
                data: &[],
                path: path_s.clone(),
                dev,
                ino,
                file_off: page_round_down(p.p_offset),
                file_size: u64::MAX,
            },
        )?;
        let lead = bias.wrapping_add(p.p_vaddr) - start;
        let data = read_at(f, p.p_offset - lead, (lead + p.p_filesz) as usize)?;
        if data.len() as u64 != lead + p.p_filesz {
            return Err(Errno::EIO);
        }
        mm.poke(start, &data)?;
        end = end.max(seg_end);
    }
    Ok((bias, end))
}

/// Replace `t`'s image with the program at `path`.
/// An executable found and checked, not loaded yet: what execve can fail
/// on before its point of no return (the file, `#!` interpreters, the ELF
/// headers, the program interpreter).
pub struct Resolved {
    path: Vec<u8>,
    argv: Vec<Vec<u8>>,
    dentry: Arc<Dentry>,
    file: Arc<File>,
    elf: Elf,
    interp: Option<Interp>,
}

/// Finds and checks the executable `path` (or `first`, the file `path`
/// stands for), following `#!` lines; changes nothing.
pub fn resolve(
    t: &Task,
    path: &[u8],
    mut first: Option<Arc<Dentry>>,
    mut argv: Vec<Vec<u8>>,
) -> KResult<Resolved> {
    let mut path = path.to_vec();
    let mut depth = 0;
    let (dentry, file, elf) = loop {
        let (d, f) = match first.take() {
            Some(d) => open_exec_dentry(t, d)?,
            None => open_exec(t, &path)?,
        };
        let head = read_at(&f, 0, 256)?;
        if head.starts_with(b"#!") {
            depth += 1;
            if depth > MAX_INTERP_DEPTH {
                return Err(Errno::ELOOP);
            }
            let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
            let line = &head[2..line_end];
            let line: Vec<u8> = line
                .iter()
                .copied()
                .skip_while(|b| *b == b' ' || *b == b'\t')
                .collect();
            let split = line.iter().position(|&b| b == b' ' || b == b'\t');
            let (interp, arg) = match split {
                Some(i) => {
                    let rest: Vec<u8> = line[i..]
                        .iter()
                        .copied()
                        .skip_while(|b| *b == b' ' || *b == b'\t')
                        .collect();
                    let rest = rest.trim_ascii_end().to_vec();
                    (
                        line[..i].to_vec(),
                        if rest.is_empty() { None } else { Some(rest) },
                    )
                }
                None => (line.trim_ascii_end().to_vec(), None),
            };
            if interp.is_empty() {
                return Err(Errno::ENOEXEC);
            }
            let mut new_argv = vec![interp.clone()];
            if let Some(a) = arg {
                new_argv.push(a);
            }
            new_argv.push(path.clone());
            new_argv.extend(argv.iter().skip(1).cloned());
            argv = new_argv;
            path = interp;
            continue;
        }
        let elf = parse_elf(&f)?;
        break (d, f, elf);
    };

    // Interpreter, if any.
    let mut interp: Option<Interp> = None;
    for p in &elf.phdrs {
        if p.p_type == PT_INTERP {
            if p.p_filesz == 0 || p.p_filesz > 4096 {
                return Err(Errno::ENOEXEC);
            }
            let mut name = read_at(&file, p.p_offset, p.p_filesz as usize)?;
            if let Some(z) = name.iter().position(|&b| b == 0) {
                name.truncate(z);
            }
            let (idn, idf) = open_exec(t, &name)?;
            let ielf = parse_elf(&idf)?;
            let m = idn.meta();
            interp = Some((idf, ielf, name, m.dev, m.ino));
        }
    }
    Ok(Resolved {
        path,
        argv,
        dentry,
        file,
        elf,
        interp,
    })
}

/// Builds the new address space of a resolved executable: execve's point
/// of no return.
pub fn load(t: &mut Task, r: Resolved, envp: Vec<Vec<u8>>) -> KResult<Loaded> {
    let Resolved {
        path,
        argv,
        dentry,
        file,
        elf,
        interp,
    } = r;
    // The initial stack is as large as RLIMIT_STACK allows (bounded).
    let stack_size: u64 = match t.rlimit(crate::kernel::task::RLIMIT_STACK).cur {
        RLIM_INFINITY => DEFAULT_STACK,
        n => page_round_down(n.clamp(128 << 10, 1 << 30)),
    };
    let as_ = t.k.platform.new_address_space();
    let mut mm = MemoryManager::new(t.k.mf.clone(), as_);
    let r = rand_u64();
    mm.stack_top = page_round_down(0x7ffc_0000_0000 + (r % (1 << 32)));
    mm.mmap_base = page_round_down(
        mm.stack_top - stack_size - (128 << 20) - ((r >> 32) % (1 << 28)) * PAGE_SIZE % (1 << 36),
    );
    let m = dentry.meta();
    let pie_bias = if elf.header.e_type == ET_DYN {
        Some(page_round_down(
            0x5555_5555_4000 + (rand_u64() % (1 << 20)) * PAGE_SIZE,
        ))
    } else {
        None
    };
    let exe_path = dentry.path();
    let (bias, end) = load_segments(&mut mm, &file, &elf, &exe_path, m.dev, m.ino, pie_bias)?;
    let entry_main = bias.wrapping_add(elf.header.e_entry);
    let phdr = elf
        .phdrs
        .iter()
        .find(|p| p.p_type == PT_PHDR)
        .map(|p| bias.wrapping_add(p.p_vaddr))
        .or_else(|| {
            elf.phdrs
                .iter()
                .find(|p| p.p_type == PT_LOAD && p.p_offset == 0)
                .map(|p| bias.wrapping_add(p.p_vaddr) + elf.header.e_phoff)
        })
        .unwrap_or(0);
    let (entry, interp_base) = match &interp {
        Some((idf, ielf, name, dev, ino)) => {
            let (ibias, _) = load_segments(&mut mm, idf, ielf, name, *dev, *ino, None)?;
            (ibias.wrapping_add(ielf.header.e_entry), ibias)
        }
        None => (entry_main, 0),
    };
    let brk_start = end + (rand_u64() % 8192) * PAGE_SIZE;
    mm.brk_start = brk_start;
    mm.brk = brk_start;

    // Stack.
    let stack_lo = mm.stack_top - stack_size;
    mm.mmap(
        stack_lo,
        stack_size,
        PROT_READ | PROT_WRITE,
        false,
        true,
        false,
        Backing::Anon,
    )?;
    let mut sp = mm.stack_top;
    let push_bytes = |mm: &MemoryManager, sp: &mut u64, b: &[u8]| -> KResult<u64> {
        *sp -= b.len() as u64;
        mm.poke(*sp, b)?;
        Ok(*sp)
    };
    let mut execfn = exe_path.clone();
    if let Some(a0) = argv.first() {
        if path.contains(&b'/') || a0 == &path {
            execfn = path.clone();
        }
    }
    execfn.push(0);
    let execfn_addr = push_bytes(&mm, &mut sp, &execfn)?;
    let mut env_ptrs = Vec::new();
    let env_hi = sp;
    for e in envp.iter().rev() {
        let mut s = e.clone();
        s.push(0);
        env_ptrs.push(push_bytes(&mm, &mut sp, &s)?);
    }
    env_ptrs.reverse();
    let env_lo = sp;
    let arg_hi = sp;
    let mut arg_ptrs = Vec::new();
    for a in argv.iter().rev() {
        let mut s = a.clone();
        s.push(0);
        arg_ptrs.push(push_bytes(&mm, &mut sp, &s)?);
    }
    arg_ptrs.reverse();
    let arg_lo = sp;
    let platform = push_bytes(&mm, &mut sp, b"x86_64\0")?;
    let mut rnd = [0u8; 16];
    crate::fs::dev::fill_random(&mut rnd)?;
    let random = push_bytes(&mm, &mut sp, &rnd)?;
    sp &= !15;

    let c = t.creds();
    // CPUID traps in a VM: ask once.
    static HWCAP: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let hwcap = *HWCAP.get_or_init(|| std::arch::x86_64::__cpuid(1).edx as u64);
    let auxv: Vec<(u64, u64)> = vec![
        (16, hwcap),                 // AT_HWCAP
        (6, PAGE_SIZE),              // AT_PAGESZ
        (17, 100),                   // AT_CLKTCK
        (3, phdr),                   // AT_PHDR
        (4, 56),                     // AT_PHENT
        (5, elf.phdrs.len() as u64), // AT_PHNUM
        (7, interp_base),            // AT_BASE
        (8, 0),                      // AT_FLAGS
        (9, entry_main),             // AT_ENTRY
        (11, c.uid as u64),          // AT_UID
        (12, c.euid as u64),         // AT_EUID
        (13, c.gid as u64),          // AT_GID
        (14, c.egid as u64),         // AT_EGID
        (23, 0),                     // AT_SECURE
        (25, random),                // AT_RANDOM
        (26, 0),                     // AT_HWCAP2
        (31, execfn_addr),           // AT_EXECFN
        (15, platform),              // AT_PLATFORM
        (0, 0),                      // AT_NULL
    ];
    let mut words: Vec<u64> = vec![argv.len() as u64];
    words.extend(&arg_ptrs);
    words.push(0);
    words.extend(&env_ptrs);
    words.push(0);
    for (k, v) in &auxv {
        words.push(*k);
        words.push(*v);
    }
    if words.len() % 2 == 1 {
        sp -= 8; // keep the final rsp 16-byte aligned
    }
    sp -= words.len() as u64 * 8;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    mm.poke(sp, &bytes)?;
    // The stack VMA is named for /proc/self/maps.
    mm.set_kind(stack_lo, VmaKind::Stack);
    mm.arg_range = (arg_lo, arg_hi);
    mm.env_range = (env_lo, env_hi);
    mm.exe_path = String::from_utf8_lossy(&exe_path).to_string();
    mm.auxv = auxv;

    t.install_mm(mm);
    Ok(Loaded {
        entry,
        sp,
        exe: dentry,
        argv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_image_accepts_a_real_binary_and_survives_mutations() {
        let Ok(image) = std::fs::read("/bin/busybox").or_else(|_| std::fs::read("/proc/self/exe"))
        else {
            return;
        };
        let (ty, loads, span) = check_image(&image).expect("a real executable passes");
        assert!(ty == ET_EXEC || ty == ET_DYN);
        assert!(loads > 0 && span > 0);
        assert_eq!(check_image(b"#!/bin/sh\n"), Err(Errno::ENOEXEC));
        assert_eq!(check_image(&[]), Err(Errno::ENOEXEC));
        // Deterministic mutations of the header and program headers: every
        // outcome is Ok or an errno, never a panic.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let head = image.len().min(4096);
        for _ in 0..20_000 {
            let mut m = image[..head].to_vec();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state as usize) % m.len();
                m[i] = (state >> 32) as u8;
            }
            let _ = check_image(&m);
        }
    }
}
