//! MAP_SHARED mappings of regular files the sandbox wrote (in-memory
//! files): coherent with read/write across processes, growing with
//! ftruncate, msync; MAP_PRIVATE copies stay private. Differential.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

/// Files that grow past the sentry's heap threshold (1 MiB) into the
/// memory file: contents kept across the move, a sparse 5 GiB file mapped
/// shared near its end, holes and truncation reading as zeroes, growth
/// while mapped.
const LARGE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char p[512], blk[65536], buf[16];
    snprintf(p, sizeof p, "%s/large.dat", argv[1]);
    unlink(p);
    int fd = open(p, O_RDWR | O_CREAT, 0644);
    for (int i = 0; i < 40; i++) {
        memset(blk, 'a' + i % 26, sizeof blk);
        if (write(fd, blk, sizeof blk) != sizeof blk)
            printf("write %d: %s\n", i, strerror(errno));
    }
    for (long at = 0; at < 40 * 65536L; at += 300000) {
        pread(fd, buf, 1, at);
        printf("byte at %ld: %c\n", at, buf[0]);
    }
    off_t big = 5LL << 30;
    printf("pwrite at 5 GiB: %zd\n", pwrite(fd, "tail", 4, big));
    struct stat st;
    fstat(fd, &st);
    printf("size %lld\n", (long long)st.st_size);
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, big & ~4095LL);
    printf("mmap near the end: %s\n", m == MAP_FAILED ? strerror(errno) : "ok");
    if (m == MAP_FAILED)
        return 1;
    printf("window: %.4s\n", m + (big & 4095));
    memcpy(m + (big & 4095), "TAIL", 4);
    memset(buf, 0, sizeof buf);
    pread(fd, buf, 4, big);
    printf("read after store: %s\n", buf);
    munmap(m, 4096);
    memset(buf, 1, sizeof buf);
    pread(fd, buf, 8, 3LL << 30);
    int zero = 1;
    for (int i = 0; i < 8; i++)
        zero &= buf[i] == 0;
    printf("hole reads zero: %d\n", zero);
    ftruncate(fd, (1 << 20) + 5);
    ftruncate(fd, 4 << 20);
    buf[0] = 1;
    pread(fd, buf, 1, (1 << 20) + 10);
    printf("after shrink and grow: %d\n", buf[0]);
    m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("mmap at 0: %s\n", m == MAP_FAILED ? strerror(errno) : "ok");
    printf("ftruncate 8 MiB while mapped: %d\n", ftruncate(fd, 8 << 20));
    printf("pwrite at 7 MiB: %zd\n", pwrite(fd, "x", 1, 7 << 20));
    memcpy(m, "HEAD", 4);
    memset(buf, 0, sizeof buf);
    pread(fd, buf, 4, 0);
    printf("head: %s\n", buf);
    pread(fd, buf, 1, 7 << 20);
    printf("at 7 MiB: %c\n", buf[0]);
    close(fd);
    unlink(p);
    return 0;
}
"#;

const MMAP: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char p[512];
    snprintf(p, sizeof p, "%s/shared.dat", argv[1]);
    unlink(p);
    int fd = open(p, O_RDWR | O_CREAT, 0644);
    write(fd, "initial contents", 16);
    ftruncate(fd, 4096);
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("mmap: %s\n", m == MAP_FAILED ? strerror(errno) : "ok");
    printf("mapped: %.16s\n", m);
    memcpy(m, "INITIAL", 7);
    char buf[32] = {0};
    pread(fd, buf, 16, 0);
    printf("read after store: %s\n", buf);
    pwrite(fd, "written", 7, 8);
    printf("mapping after write: %.16s\n", m);
    char *priv = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    memcpy(priv, "private", 7);
    memset(buf, 0, sizeof buf);
    pread(fd, buf, 16, 0);
    printf("private store stays private: %s\n", buf);
    pid_t c = fork();
    if (c == 0) {
        int f2 = open(p, O_RDWR);
        char *m2 = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f2, 0);
        memcpy(m2 + 100, "from the child", 14);
        msync(m2, 4096, MS_SYNC);
        _exit(0);
    }
    waitpid(c, 0, 0);
    printf("child's store seen: %.14s\n", m + 100);
    struct stat st;
    fstat(fd, &st);
    printf("size %ld\n", (long)st.st_size);
    ftruncate(fd, 6000);
    m[5999] = 'Z';
    memset(buf, 0, sizeof buf);
    pread(fd, buf, 1, 5999);
    printf("after grow: %s\n", buf);
    printf("msync: %d\n", msync(m, 8192, MS_SYNC));
    munmap(m, 8192);
    close(fd);
    fd = open(p, O_RDONLY);
    memset(buf, 0, sizeof buf);
    read(fd, buf, 16);
    printf("after munmap and close: %s\n", buf);
    fstat(fd, &st);
    printf("size %ld\n", (long)st.st_size);
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    printf("read-only shared map: %.7s\n", ro == MAP_FAILED ? "failed" : ro);
    char *bad = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("writable map of O_RDONLY fd: %s\n", bad == MAP_FAILED ? strerror(errno) : "mapped");
    /* mremap of shared mappings: shrink, grow, move keep the same pages */
    int rw = open(p, O_RDWR);
    ftruncate(rw, 3 * 4096);
    char *a = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
    char *g = mremap(a, 4096, 3 * 4096, MREMAP_MAYMOVE);
    printf("grow: %s\n", g == MAP_FAILED ? strerror(errno) : "ok");
    g[2 * 4096 + 1] = 'G';
    memset(buf, 0, sizeof buf);
    pread(rw, buf, 1, 2 * 4096 + 1);
    printf("store in grown part reaches the file: %s\n", buf);
    char *s2 = mremap(g, 3 * 4096, 4096, 0);
    printf("shrink in place: %d\n", s2 == g);
    char *mv = mremap(s2, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, (char *)g + 16 * 4096);
    printf("move: %d first bytes %.7s\n", mv == (char *)g + 16 * 4096, mv);
    char *anon = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    anon[0] = 'q';
    char *as = mremap(anon, 8192, 4096, 0);
    printf("shared anon shrink: %d %c\n", as == anon, as[0]);
    unlink(p);
    /* Left behind: stores through a mapping, then close without msync. */
    snprintf(p, sizeof p, "%s/persist.dat", argv[1]);
    int pf = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ftruncate(pf, 4096);
    char *pm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, pf, 0);
    memcpy(pm, "stored through a mapping", 24);
    munmap(pm, 4096);
    close(pf);
    return 0;
}
"#;

/// The same on host files: the root written through the gofer
/// (`--overlay none`), as files of a writable bind mount are.
#[test]
fn shared_mappings_of_host_files() {
    let dir = TempDir::new("mmap-shared-host");
    let exe = compile_static_c(&dir, "mmapshared", MMAP);
    let work = dir.join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    let inv = Invocation::new(&[exe.to_str().unwrap(), work.to_str().unwrap()])
        .rvisor_arg("--overlay")
        .rvisor_arg("none");
    let (native, _) = inv.assert_same();
    assert!(native
        .stdout_str()
        .contains("child's store seen: from the child"));
    // Once more under rvisor alone: what the host file holds was written
    // back from the sandbox's pages.
    std::fs::remove_file(work.join("persist.dat")).expect("rm");
    let again = inv.run_rvisor();
    assert_eq!(again.status, 0, "{}", again.describe());
    let data = std::fs::read(work.join("persist.dat")).expect("persist.dat on the host");
    assert_eq!(&data[..24], b"stored through a mapping");
    assert_eq!(data.len(), 4096);
}

#[test]
fn shared_file_mappings_are_coherent() {
    let dir = TempDir::new("mmap-shared");
    let exe = compile_static_c(&dir, "mmapshared", MMAP);
    let work = dir.join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    let (native, _) =
        Invocation::new(&[exe.to_str().unwrap(), work.to_str().unwrap()]).assert_same();
    let out = native.stdout_str();
    assert!(out.contains("child's store seen: from the child"), "{out}");
}

#[test]
fn large_and_sparse_files_in_the_memory_file() {
    let dir = TempDir::new("mmap-large");
    let exe = compile_static_c(&dir, "large", LARGE);
    let work = dir.join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    let (native, _) =
        Invocation::new(&[exe.to_str().unwrap(), work.to_str().unwrap()]).assert_same();
    let out = native.stdout_str();
    assert!(out.contains("read after store: TAIL"), "{out}");
    assert!(out.contains("at 7 MiB: x"), "{out}");
}

/// The same programs with `--overlay self`: the rootfs's upper layer (where
/// these files are) lives in the filestore, a host file beside the rootfs.
#[test]
fn shared_and_large_files_with_overlay_self() {
    let dir = TempDir::new("mmap-self");
    for (name, src) in [("mmapshared", MMAP), ("large", LARGE)] {
        let exe = compile_static_c(&dir, name, src);
        let work = dir.join(&format!("work-{name}"));
        std::fs::create_dir(&work).expect("mkdir work");
        Invocation::new(&[exe.to_str().unwrap(), work.to_str().unwrap()])
            .rvisor_arg("--overlay=self")
            .assert_same();
    }
}

/// Stores through a shared mapping of a host file reach the host file at
/// munmap, while the file is still open (the page cache would show them).
const UNMAP: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    ftruncate(fd, 4096);
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memcpy(m, "before munmap", 13);
    munmap(m, 4096);
    printf("ready\n");
    fflush(stdout);
    char c;
    read(0, &c, 1);
    close(fd);
    return 0;
}
"#;

#[test]
fn munmap_writes_a_host_file_back() {
    let dir = TempDir::new("mmap-unmap");
    let exe = compile_static_c(&dir, "unmap", UNMAP);
    let target = dir.join("target.dat");
    let argv: Vec<String> = vec![
        rvisor_tests::rvisor_bin().display().to_string(),
        "--overlay".into(),
        "none".into(),
        "do".into(),
        "--".into(),
        exe.display().to_string(),
        target.display().to_string(),
    ];
    let run = rvisor_tests::Running::start(&argv);
    let data = std::fs::read(&target).expect("the host file");
    let (_, status) = run.finish(b"x");
    assert!(status.success());
    assert_eq!(
        &data[..13],
        b"before munmap",
        "the host file while the sandbox still holds it open"
    );
}
