//! procfs and the minimal sysfs: synthetic nodes generated from the
//! sandbox's own kernel state, never the host's.

use crate::abi::*;
use crate::kernel::task::Task;
use crate::kernel::ThreadInfo;
use crate::vfs::{lock, Dentry, FsType, Inode, Meta, Node, PROC_DEV};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub enum ProcNode {
    Root,
    /// A fixed directory under /proc/sys or /proc/net (its path below /proc).
    SysDir(&'static str),
    /// The root of the sandbox's cgroup filesystem (cgroup v2 layout).
    CgroupRoot,
    PidDir(i32),
    FdDir(i32),
    File(ProcFile),
    Link(ProcLink),
}

#[derive(Clone, Debug)]
pub enum ProcFile {
    Meminfo,
    Cpuinfo,
    Stat,
    Uptime,
    Version,
    Loadavg,
    Filesystems,
    Mounts,
    PidStat(i32),
    PidStatus(i32),
    PidStatm(i32),
    PidCmdline(i32),
    PidEnviron(i32),
    PidMaps(i32),
    PidComm(i32),
    Mountinfo,
    /// A file of the cgroup filesystem, by name.
    Cgroup(&'static str),
    CpuOnline,
    Static(&'static str),
    /// /proc/net/{tcp,tcp6,udp,udp6}: the sandbox's IP sockets.
    NetSockets(&'static str),
    /// /proc/PID/oom_score_adj (writable).
    PidOomScoreAdj(i32),
    /// /proc/sys/kernel/{hostname,domainname}: the UTS names.
    Hostname,
    Domainname,
}

#[derive(Clone, Debug)]
pub enum ProcLink {
    SelfLink,
    ThreadSelf,
    Exe(i32),
    Cwd(i32),
    Root(i32),
    Fd(i32, i32),
}

fn dir(p: ProcNode) -> Arc<Inode> {
    let ino = match &p {
        ProcNode::Root => 1,
        ProcNode::PidDir(pid) => 0x1_0000 + *pid as u64 * 16,
        ProcNode::FdDir(pid) => 0x1_0001 + *pid as u64 * 16,
        _ => crate::vfs::new_ino(),
    };
    let mut m = Meta::new(S_IFDIR | 0o555, PROC_DEV, 0, 0);
    m.ino = ino;
    Inode::new(Node::Proc(p), m)
}

fn file(f: ProcFile) -> Arc<Inode> {
    Inode::new(
        Node::Proc(ProcNode::File(f)),
        Meta::new(S_IFREG | 0o444, PROC_DEV, 0, 0),
    )
}

fn link(l: ProcLink) -> Arc<Inode> {
    Inode::new(
        Node::Proc(ProcNode::Link(l)),
        Meta::new(S_IFLNK | 0o777, PROC_DEV, 0, 0),
    )
}

pub fn build_proc(mountpoint: &Arc<Dentry>) -> Arc<Dentry> {
    Dentry::new_root(dir(ProcNode::Root), FsType::Proc, Some(mountpoint.clone()))
}

/// sysfs: only what libc and language runtimes read.
pub fn build_sys(mountpoint: &Arc<Dentry>) -> Arc<Dentry> {
    let d = |_: ()| Inode::new(Node::MemDir, Meta::new(S_IFDIR | 0o555, PROC_DEV + 1, 0, 0));
    let root = Dentry::new_root(d(()), FsType::Sys, Some(mountpoint.clone()));
    let devices = root.add_child(b"devices", d(()));
    let system = devices.add_child(b"system", d(()));
    let cpu = system.add_child(b"cpu", d(()));
    cpu.add_child(b"online", file(ProcFile::CpuOnline));
    cpu.add_child(b"possible", file(ProcFile::CpuOnline));
    cpu.add_child(b"present", file(ProcFile::CpuOnline));
    root.add_child(b"fs", d(()));
    root.add_child(b"kernel", d(()));
    root
}

/// The files of the sandbox's cgroup (v2) root: the limits the sentry
/// enforces and what is in use, so runtimes that size themselves from
/// their cgroup (JVMs, Go, .NET) see the container's limits.
const CGROUP_FILES: [&str; 9] = [
    "cgroup.controllers",
    "cgroup.procs",
    "cgroup.type",
    "cpu.max",
    "memory.current",
    "memory.max",
    "memory.peak",
    "pids.current",
    "pids.max",
];

fn cgroup_file(k: &crate::kernel::Kernel, name: &str) -> String {
    use std::sync::atomic::Ordering;
    let limit = |v: u64| {
        if v == 0 || v == u64::MAX {
            "max\n".to_string()
        } else {
            format!("{v}\n")
        }
    };
    match name {
        "cgroup.controllers" => "cpu memory pids\n".into(),
        "cgroup.procs" => k.tgids().iter().map(|p| format!("{p}\n")).collect(),
        "cgroup.type" => "domain\n".into(),
        "cpu.max" => match *lock(&k.cpu_max) {
            Some((quota, period)) if quota > 0 => format!("{quota} {period}\n"),
            Some((_, period)) => format!("max {period}\n"),
            None => "max 100000\n".into(),
        },
        "memory.current" | "memory.peak" => format!("{}\n", k.mf.resident()),
        "memory.max" => limit(k.memory_limit.load(Ordering::Relaxed)),
        "pids.current" => format!("{}\n", k.task_count()),
        "pids.max" => limit(k.pids_limit.load(Ordering::Relaxed) as u64),
        _ => String::new(),
    }
}

/// The cgroup filesystem mounted on `mountpoint` (read-only).
pub fn build_cgroup(mountpoint: &Arc<Dentry>) -> Arc<Dentry> {
    Dentry::new_mount_root(
        dir(ProcNode::CgroupRoot),
        FsType::Sys,
        Some(mountpoint.clone()),
        true,
    )
}

/// The directories below /proc/sys: (name, path).
fn sys_dirs(path: &str) -> &'static [(&'static str, &'static str)] {
    match path {
        "sys" => &[
            ("kernel", "sys/kernel"),
            ("vm", "sys/vm"),
            ("fs", "sys/fs"),
            ("net", "sys/net"),
        ],
        "sys/net" => &[("core", "sys/net/core"), ("ipv4", "sys/net/ipv4")],
        "sys/fs" => &[("mqueue", "sys/fs/mqueue")],
        _ => &[],
    }
}

/// The files below /proc/sys: fixed values of this sandbox's kernel.
fn sys_files(path: &str) -> &'static [(&'static str, &'static str)] {
    match path {
        "sys/kernel" => &[
            ("cap_last_cap", "40\n"),
            ("ngroups_max", "65536\n"),
            ("ostype", "Linux\n"),
            ("overflowgid", "65534\n"),
            ("overflowuid", "65534\n"),
            ("pid_max", "4194304\n"),
            ("threads-max", "4096\n"),
        ],
        "sys/vm" => &[("max_map_count", "65530\n"), ("overcommit_memory", "0\n")],
        "sys/fs" => &[
            ("nr_open", "1048576\n"),
            ("file-max", "9223372036854775807\n"),
        ],
        // POSIX message queue limits (fs::mqueue).
        "sys/fs/mqueue" => &[
            ("msg_default", "10\n"),
            ("msg_max", "10\n"),
            ("msgsize_default", "8192\n"),
            ("msgsize_max", "8192\n"),
            ("queues_max", "256\n"),
        ],
        // The network (fs::inet): loopback only.
        "sys/net/core" => &[
            ("rmem_default", "212992\n"),
            ("rmem_max", "212992\n"),
            ("somaxconn", "4096\n"),
            ("wmem_default", "212992\n"),
            ("wmem_max", "212992\n"),
        ],
        "sys/net/ipv4" => &[
            ("ip_local_port_range", "32768\t60999\n"),
            ("ip_unprivileged_port_start", "1024\n"),
            ("tcp_rmem", "4096\t131072\t6291456\n"),
            ("tcp_wmem", "4096\t16384\t4194304\n"),
        ],
        // /proc/net: the loopback interface; the socket tables' headers
        // (their rows: fs::inet::socket_table).
        "net" => &[
            ("dev", NET_DEV),
            (
                "if_inet6",
                "00000000000000000000000000000001 01 80 10 80       lo\n",
            ),
            ("tcp", NET_TCP),
            ("tcp6", NET_TCP6),
            ("udp", NET_UDP),
            ("udp6", NET_UDP6),
            (
                "unix",
                "Num       RefCount Protocol Flags    Type St Inode Path\n",
            ),
        ],
        _ => &[],
    }
}

const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
";
const NET_TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
const NET_TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
const NET_UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n";
const NET_UDP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n";

fn thread(t: &Task, pid: i32) -> KResult<Arc<ThreadInfo>> {
    t.k.thread(pid).ok_or(Errno::ENOENT)
}

pub fn lookup(p: &ProcNode, name: &[u8], t: &Task) -> KResult<Arc<Inode>> {
    let name_s = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
    match p {
        ProcNode::Root => {
            if let Ok(pid) = name_s.parse::<i32>() {
                thread(t, pid)?;
                return Ok(dir(ProcNode::PidDir(pid)));
            }
            Ok(match name_s {
                "self" => link(ProcLink::SelfLink),
                "thread-self" => link(ProcLink::ThreadSelf),
                "meminfo" => file(ProcFile::Meminfo),
                "cpuinfo" => file(ProcFile::Cpuinfo),
                "stat" => file(ProcFile::Stat),
                "uptime" => file(ProcFile::Uptime),
                "version" => file(ProcFile::Version),
                "loadavg" => file(ProcFile::Loadavg),
                "filesystems" => file(ProcFile::Filesystems),
                "mounts" => file(ProcFile::Mounts),
                "sys" => dir(ProcNode::SysDir("sys")),
                "net" => dir(ProcNode::SysDir("net")),
                _ => return Err(Errno::ENOENT),
            })
        }
        ProcNode::CgroupRoot => CGROUP_FILES
            .iter()
            .find(|n| **n == name_s)
            .map(|n| file(ProcFile::Cgroup(n)))
            .ok_or(Errno::ENOENT),
        ProcNode::SysDir(path) => {
            for (name, sub) in sys_dirs(path) {
                if *name == name_s {
                    return Ok(dir(ProcNode::SysDir(sub)));
                }
            }
            if *path == "sys/kernel" {
                match name_s {
                    "hostname" => return Ok(file(ProcFile::Hostname)),
                    "domainname" => return Ok(file(ProcFile::Domainname)),
                    _ => {}
                }
            }
            for (name, value) in sys_files(path) {
                if *name == name_s {
                    if *path == "net" && crate::fs::inet::is_socket_table(name) {
                        return Ok(file(ProcFile::NetSockets(name)));
                    }
                    return Ok(file(ProcFile::Static(value)));
                }
            }
            Err(Errno::ENOENT)
        }
        ProcNode::PidDir(pid) => {
            let pid = *pid;
            thread(t, pid)?;
            Ok(match name_s {
                "stat" => file(ProcFile::PidStat(pid)),
                "status" => file(ProcFile::PidStatus(pid)),
                "statm" => file(ProcFile::PidStatm(pid)),
                "cmdline" => file(ProcFile::PidCmdline(pid)),
                "environ" => file(ProcFile::PidEnviron(pid)),
                "maps" => file(ProcFile::PidMaps(pid)),
                "comm" => file(ProcFile::PidComm(pid)),
                "mounts" => file(ProcFile::Mounts),
                "mountinfo" => file(ProcFile::Mountinfo),
                "cgroup" => file(ProcFile::Static("0::/\n")),
                "oom_score_adj" => {
                    // 0644, owned by the process's user, as on Linux.
                    let uid = thread(t, pid)?
                        .proc_
                        .ruid
                        .load(std::sync::atomic::Ordering::Relaxed);
                    Inode::new(
                        Node::Proc(ProcNode::File(ProcFile::PidOomScoreAdj(pid))),
                        Meta::new(S_IFREG | 0o644, PROC_DEV, uid, uid),
                    )
                }
                "uid_map" | "gid_map" => {
                    file(ProcFile::Static("         0          0 4294967295\n"))
                }
                "exe" => link(ProcLink::Exe(pid)),
                "cwd" => link(ProcLink::Cwd(pid)),
                "root" => link(ProcLink::Root(pid)),
                "fd" => dir(ProcNode::FdDir(pid)),
                _ => return Err(Errno::ENOENT),
            })
        }
        ProcNode::FdDir(pid) => {
            let fd: i32 = name_s.parse().map_err(|_| Errno::ENOENT)?;
            let th = thread(t, *pid)?;
            let fds = th.fds();
            lock(&fds).get(fd).map_err(|_| Errno::ENOENT)?;
            Ok(link(ProcLink::Fd(*pid, fd)))
        }
        _ => Err(Errno::ENOTDIR),
    }
}

pub fn list(p: &ProcNode, t: &Task) -> KResult<Vec<(Vec<u8>, u64, u8)>> {
    let mut out = Vec::new();
    let mut push = |n: &str, dt: u8| out.push((n.as_bytes().to_vec(), crate::vfs::new_ino(), dt));
    match p {
        ProcNode::Root => {
            for n in ["self", "thread-self"] {
                push(n, DT_LNK);
            }
            for n in [
                "meminfo",
                "cpuinfo",
                "stat",
                "uptime",
                "version",
                "loadavg",
                "filesystems",
                "mounts",
            ] {
                push(n, DT_REG);
            }
            push("sys", DT_DIR);
            push("net", DT_DIR);
            for pid in t.k.tgids() {
                push(&pid.to_string(), DT_DIR);
            }
        }
        ProcNode::CgroupRoot => {
            for n in CGROUP_FILES {
                push(n, DT_REG);
            }
        }
        ProcNode::SysDir(path) => {
            for (name, _) in sys_dirs(path) {
                push(name, DT_DIR);
            }
            for (name, _) in sys_files(path) {
                push(name, DT_REG);
            }
            if *path == "sys/kernel" {
                push("domainname", DT_REG);
                push("hostname", DT_REG);
            }
        }
        ProcNode::PidDir(_) => {
            for n in [
                "stat",
                "status",
                "statm",
                "cmdline",
                "environ",
                "maps",
                "comm",
                "mounts",
                "mountinfo",
                "cgroup",
                "oom_score_adj",
                "uid_map",
                "gid_map",
            ] {
                push(n, DT_REG);
            }
            for n in ["exe", "cwd", "root"] {
                push(n, DT_LNK);
            }
            push("fd", DT_DIR);
        }
        ProcNode::FdDir(pid) => {
            let th = thread(t, *pid)?;
            let fds = th.fds();
            let fds = lock(&fds);
            for (fd, _) in fds.iter() {
                push(&fd.to_string(), DT_LNK);
            }
        }
        _ => return Err(Errno::ENOTDIR),
    }
    Ok(out)
}

/// Magic links resolve to a dentry directly, not through their text.
pub fn link_target(p: &ProcNode, t: &Task) -> KResult<Option<Arc<Dentry>>> {
    let ProcNode::Link(l) = p else {
        return Ok(None);
    };
    Ok(match l {
        ProcLink::Exe(pid) => thread(t, *pid)?.exe(),
        ProcLink::Cwd(pid) => Some(lock(&thread(t, *pid)?.fs).cwd.clone()),
        ProcLink::Root(pid) => Some(lock(&thread(t, *pid)?.fs).root.clone()),
        ProcLink::Fd(pid, fd) => {
            let th = thread(t, *pid)?;
            let fds = th.fds();
            let f = lock(&fds).get(*fd).map_err(|_| Errno::ENOENT)?;
            f.dentry.clone()
        }
        ProcLink::SelfLink | ProcLink::ThreadSelf => None,
    })
}

pub fn readlink(p: &ProcNode, t: &Task) -> KResult<Vec<u8>> {
    let ProcNode::Link(l) = p else {
        return Err(Errno::EINVAL);
    };
    match l {
        ProcLink::SelfLink => Ok(t.tgid.to_string().into_bytes()),
        ProcLink::ThreadSelf => Ok(format!("{}/task/{}", t.tgid, t.tid).into_bytes()),
        ProcLink::Fd(pid, fd) => {
            let th = thread(t, *pid)?;
            let fds = th.fds();
            let f = lock(&fds).get(*fd).map_err(|_| Errno::ENOENT)?;
            Ok(match &f.dentry {
                Some(d) => d.path(),
                None => match &f.kind {
                    crate::vfs::file::FileKind::Host { .. } => format!("host:[{fd}]").into_bytes(),
                    crate::vfs::file::FileKind::Socket(sk) => {
                        format!("socket:[{}]", sk.ino).into_bytes()
                    }
                    _ => b"anon_inode:[unknown]".to_vec(),
                },
            })
        }
        _ => Ok(link_target(p, t)?.map(|d| d.path()).ok_or(Errno::ENOENT)?),
    }
}

fn join0(v: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in v {
        out.extend_from_slice(a);
        out.push(0);
    }
    out
}

/// Whether `p` is a file that may be opened for writing.
pub fn writable(p: &ProcNode) -> bool {
    matches!(p, ProcNode::File(ProcFile::PidOomScoreAdj(_)))
}

/// Linux's kstrtoint(s, 0): optional sign, then 0x hex, 0 octal or decimal.
fn parse_int(s: &str) -> Option<i32> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, h)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(digits, radix).ok()?;
    i32::try_from(if neg { -v } else { v }).ok()
}

/// A write to a writable procfs file (see [`writable`]); returns the bytes
/// consumed.
pub fn write(p: &ProcNode, t: &Task, data: &[u8]) -> KResult<usize> {
    let ProcNode::File(ProcFile::PidOomScoreAdj(pid)) = p else {
        return Err(Errno::EINVAL);
    };
    // As Linux: at most 12 bytes are looked at, surrounding blanks ignored.
    let n = data.len().min(12);
    let text = std::str::from_utf8(&data[..n]).map_err(|_| Errno::EINVAL)?;
    let v = parse_int(text.trim()).ok_or(Errno::EINVAL)?;
    let th = thread(t, *pid)?;
    let privileged = t.creds().has_cap(crate::kernel::creds::CAP_SYS_RESOURCE);
    lock(&th.proc_.oom).set(v, privileged)?;
    Ok(n)
}

/// Content of a synthetic file, generated at open.
pub fn generate(f: &ProcFile, t: &Task) -> KResult<Vec<u8>> {
    let k = &t.k;
    let s = match f {
        ProcFile::Meminfo => {
            let total = k.mem_limit / 1024;
            let used = k.mf.used() / 1024;
            let free = total.saturating_sub(used);
            format!(
                "MemTotal:       {total:8} kB\nMemFree:        {free:8} kB\nMemAvailable:   {free:8} kB\nBuffers:               0 kB\nCached:                0 kB\nSwapCached:            0 kB\nActive:         {used:8} kB\nInactive:              0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\nShmem:                 0 kB\nCommitLimit:    {total:8} kB\nCommitted_AS:   {used:8} kB\n"
            )
        }
        ProcFile::Cpuinfo => {
            let mut s = String::new();
            for i in 0..k.ncpus {
                s.push_str(&format!(
                    "processor\t: {i}\nvendor_id\t: rvisor\ncpu family\t: 6\nmodel name\t: rvisor virtual CPU\ncpu MHz\t\t: 2000.000\ncache size\t: 0 KB\nphysical id\t: 0\nsiblings\t: {n}\ncore id\t\t: {i}\ncpu cores\t: {n}\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt avx avx2\nbogomips\t: 4000.00\n\n",
                    n = k.ncpus
                ));
            }
            s
        }
        ProcFile::Stat => {
            let mut s = String::from("cpu  0 0 0 0 0 0 0 0 0 0\n");
            for i in 0..k.ncpus {
                s.push_str(&format!("cpu{i} 0 0 0 0 0 0 0 0 0 0\n"));
            }
            let boot = k.boot_wall;
            s.push_str(&format!(
                "intr 0\nctxt 0\nbtime {boot}\nprocesses {}\nprocs_running 1\nprocs_blocked 0\n",
                k.tgids().len()
            ));
            s
        }
        ProcFile::Uptime => {
            let up = k.boot.elapsed().as_secs_f64();
            format!("{up:.2} 0.00\n")
        }
        ProcFile::Version => format!("Linux version {} (rvisor) #1 SMP PREEMPT_DYNAMIC\n", crate::kernel::RELEASE),
        ProcFile::Loadavg => format!("0.00 0.00 0.00 1/{} {}\n", k.tgids().len(), k.last_pid()),
        ProcFile::Filesystems => "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevtmpfs\nnodev\tdevpts\nnodev\toverlay\n".to_string(),
        ProcFile::Mounts => {
            let mut s = String::new();
            for m in lock(&k.mounts).iter() {
                let data = if m.data.is_empty() {
                    String::new()
                } else {
                    format!(",{}", m.data)
                };
                s += &format!(
                    "{} {} {} {}{},relatime{data} 0 0\n",
                    m.source,
                    String::from_utf8_lossy(&m.dest),
                    m.fstype,
                    if m.readonly { "ro" } else { "rw" },
                    m.flags
                );
            }
            s
        }
        ProcFile::Mountinfo => {
            let mut s = String::new();
            for m in lock(&k.mounts).iter() {
                let ro = if m.readonly { "ro" } else { "rw" };
                let data = if m.data.is_empty() {
                    String::new()
                } else {
                    format!(",{}", m.data)
                };
                s += &format!(
                    "{} {} 0:{} {} {} {ro}{},relatime - {} {} {ro}{data}\n",
                    m.id,
                    m.parent,
                    m.id + 10,
                    m.root,
                    String::from_utf8_lossy(&m.dest),
                    m.flags,
                    m.fstype,
                    m.source
                );
            }
            s
        }
        ProcFile::CpuOnline => {
            if k.ncpus <= 1 {
                "0\n".to_string()
            } else {
                format!("0-{}\n", k.ncpus - 1)
            }
        }
        ProcFile::Static(s) => s.to_string(),
        ProcFile::PidOomScoreAdj(pid) => {
            format!("{}\n", lock(&thread(t, *pid)?.proc_.oom).value)
        }
        ProcFile::Hostname | ProcFile::Domainname => {
            let mut name = lock(if matches!(f, ProcFile::Hostname) {
                &k.hostname
            } else {
                &k.domainname
            })
            .clone();
            name.push(b'\n');
            return Ok(name);
        }
        ProcFile::NetSockets(name) => {
            let header = sys_files("net")
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, h)| h);
            format!("{header}{}", crate::fs::inet::socket_table(name))
        }
        ProcFile::Cgroup(name) => cgroup_file(k, name),
        ProcFile::PidCmdline(pid) => return Ok(join0(&lock(&thread(t, *pid)?.argv).clone())),
        ProcFile::PidEnviron(pid) => return Ok(join0(&lock(&thread(t, *pid)?.envv).clone())),
        ProcFile::PidComm(pid) => {
            let mut c = lock(&thread(t, *pid)?.comm).clone();
            c.push(b'\n');
            return Ok(c);
        }
        ProcFile::PidMaps(pid) => {
            let mm = thread(t, *pid)?.mm();
            let text = lock(&mm).maps_text();
            text
        }
        ProcFile::PidStatm(pid) => {
            let mm = thread(t, *pid)?.mm();
            let pages = lock(&mm).mapped_bytes() / PAGE_SIZE;
            format!("{pages} 0 0 0 0 0 0\n")
        }
        ProcFile::PidStat(pid) => {
            let th = thread(t, *pid)?;
            let comm = String::from_utf8_lossy(&lock(&th.comm)).to_string();
            let vsize = lock(&th.mm()).mapped_bytes();
            format!(
                "{} ({}) R {} {} {} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 0 {} 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
                th.tid,
                comm,
                th.ppid(),
                th.tgid,
                th.tgid,
                vsize
            )
        }
        ProcFile::PidStatus(pid) => {
            let th = thread(t, *pid)?;
            let comm = String::from_utf8_lossy(&lock(&th.comm)).to_string();
            let vsize = lock(&th.mm()).mapped_bytes() / 1024;
            let c = t.creds();
            let threads = lock(&th.proc_.state).threads.len().max(1);
            let pending = lock(&th.signals).bits();
            let shared = lock(&th.proc_.signals).bits();
            let blocked = th.sigmask.load(std::sync::atomic::Ordering::Relaxed);
            let (mut ignored, mut caught) = (0u64, 0u64);
            for (i, a) in lock(&th.sigactions).iter().enumerate() {
                let sig = i as i32 + 1;
                if a.handler == crate::kernel::task::SIG_IGN {
                    ignored |= crate::signals::bit(sig);
                } else if a.handler != crate::kernel::task::SIG_DFL {
                    caught |= crate::signals::bit(sig);
                }
            }
            format!(
                "Name:\t{comm}\nUmask:\t{:04o}\nState:\tR (running)\nTgid:\t{}\nNgid:\t0\nPid:\t{}\nPPid:\t{}\nTracerPid:\t0\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t64\nGroups:\t{}\nVmSize:\t{vsize} kB\nVmRSS:\t{vsize} kB\nThreads:\t{threads}\nSigQ:\t0/0\nSigPnd:\t{pending:016x}\nShdPnd:\t{shared:016x}\nSigBlk:\t{blocked:016x}\nSigIgn:\t{ignored:016x}\nSigCgt:\t{caught:016x}\nCapInh:\t{:016x}\nCapPrm:\t{:016x}\nCapEff:\t{:016x}\nCapBnd:\t{:016x}\nCapAmb:\t{:016x}\nNoNewPrivs:\t{}\nSeccomp:\t0\nCpus_allowed_list:\t0-{}\n",
                lock(&th.fs).umask,
                th.tgid,
                th.tid,
                th.ppid(),
                c.uid,
                c.euid,
                c.suid,
                c.fsuid,
                c.gid,
                c.egid,
                c.sgid,
                c.fsgid,
                c.groups
                    .iter()
                    .map(|g| format!("{g} "))
                    .collect::<String>(),
                c.cap_inheritable,
                c.cap_permitted,
                c.cap_effective,
                c.cap_bounding,
                c.cap_ambient,
                c.no_new_privs as u8,
                k.ncpus.saturating_sub(1)
            )
        }
    };
    Ok(s.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::parse_int;

    #[test]
    fn kstrtoint_bases() {
        assert_eq!(parse_int("550"), Some(550));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("+7"), Some(7));
        assert_eq!(parse_int("0x226"), Some(550));
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("-"), None);
        assert_eq!(parse_int("08"), None);
        assert_eq!(parse_int("1 2"), None);
        assert_eq!(parse_int("99999999999"), None);
    }
}
