//! Extended attributes, differential: user.* on files and directories
//! created by the workload (set/get/list/remove and their l*/f* forms),
//! XATTR_CREATE/XATTR_REPLACE, size queries, ERANGE/E2BIG, bad names,
//! EPERM on symlinks and FIFOs, trusted.* as root, unknown namespaces,
//! procfs.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

/// What the xattr programs share: headers and helpers.
const HEADER: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define E(x) ((x) < 0 ? strerror(errno) : "ok")

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }
"#;

/// The start of their main: files of each kind in argv[1], then the basic
/// get/set/replace/size cases on the regular file.
const SETUP_AND_BASICS: &str = r#"
    char f[256], d[256], l[256], fifo[256];
    snprintf(f, sizeof f, "%s/file", argv[1]);
    snprintf(d, sizeof d, "%s/dir", argv[1]);
    snprintf(l, sizeof l, "%s/link", argv[1]);
    snprintf(fifo, sizeof fifo, "%s/fifo", argv[1]);
    int fd = open(f, O_RDWR | O_CREAT, 0644);
    mkdir(d, 0755);
    symlink("file", l);
    mkfifo(fifo, 0644);
    char buf[512];

    printf("get missing: %s\n", E(getxattr(f, "user.a", buf, sizeof buf)));
    printf("set: %s\n", E(setxattr(f, "user.a", "hello", 5, 0)));
    printf("size query: %zd\n", getxattr(f, "user.a", NULL, 0));
    ssize_t n = getxattr(f, "user.a", buf, sizeof buf);
    printf("get: %zd %.*s\n", n, (int)n, buf);
    printf("small buffer: %s\n", E(getxattr(f, "user.a", buf, 2)));
    printf("create existing: %s\n", E(setxattr(f, "user.a", "x", 1, XATTR_CREATE)));
    printf("replace missing: %s\n", E(setxattr(f, "user.b", "x", 1, XATTR_REPLACE)));
    printf("replace: %s\n", E(setxattr(f, "user.a", "world!", 6, XATTR_REPLACE)));
    n = fgetxattr(fd, "user.a", buf, sizeof buf);
    printf("fget: %zd %.*s\n", n, (int)n, buf);
    printf("create new: %s\n", E(fsetxattr(fd, "user.b", "", 0, XATTR_CREATE)));
    printf("empty value: %zd\n", getxattr(f, "user.b", buf, sizeof buf));
    printf("bad flags: %s\n", E(setxattr(f, "user.c", "x", 1, 4)));
"#;

/// A program: HEADER, then `body` with its `SETUP_AND_BASICS` line filled.
fn program(body: &str) -> String {
    format!(
        "{HEADER}{}",
        body.replace("    SETUP_AND_BASICS\n", SETUP_AND_BASICS)
    )
}

const XATTR: &str = r#"

/* Names sorted: the order of listxattr is the filesystem's. */
static void list(const char *what, ssize_t n, char *buf) {
    if (n < 0) { printf("%s: %s\n", what, strerror(errno)); return; }
    char *names[64]; int k = 0;
    for (char *p = buf; p < buf + n && k < 64; p += strlen(p) + 1) names[k++] = p;
    qsort(names, k, sizeof names[0], cmp);
    printf("%s: %zd bytes:", what, n);
    for (int i = 0; i < k; i++) printf(" %s", names[i]);
    printf("\n");
}

int main(int argc, char **argv) {
    SETUP_AND_BASICS
    list("list", listxattr(f, buf, sizeof buf), buf);
    printf("list size query: %zd\n", listxattr(f, NULL, 0));
    printf("list small: %s\n", E(listxattr(f, buf, 3)));
    list("flist", flistxattr(fd, buf, sizeof buf), buf);

    char longname[300];
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "user.", 5);
    longname[256] = 0;
    printf("name 256: %s\n", E(setxattr(f, longname, "x", 1, 0)));
    longname[255] = 0;
    printf("name 255: %s\n", E(setxattr(f, longname, "x", 1, 0)));
    printf("get name 255: %zd\n", getxattr(f, longname, buf, sizeof buf));
    printf("remove name 255: %s\n", E(removexattr(f, longname)));
    printf("empty name: %s\n", E(setxattr(f, "", "x", 1, 0)));
    printf("bare prefix: %s\n", E(setxattr(f, "user.", "x", 1, 0)));
    printf("unknown namespace: %s\n", E(setxattr(f, "foo.bar", "x", 1, 0)));
    printf("get unknown namespace: %s\n", E(getxattr(f, "foo.bar", buf, sizeof buf)));
    static char big[70000];
    printf("value 65537: %s\n", E(setxattr(f, "user.big", big, 65537, 0)));
    printf("value 1000: %s\n", E(setxattr(f, "user.big", big, 1000, 0)));
    printf("get 1000: %zd\n", getxattr(f, "user.big", big, sizeof big));
    printf("remove: %s\n", E(removexattr(f, "user.big")));
    printf("remove again: %s\n", E(removexattr(f, "user.big")));
    printf("fremove: %s\n", E(fremovexattr(fd, "user.b")));

    printf("dir set: %s\n", E(setxattr(d, "user.d", "dv", 2, 0)));
    n = getxattr(d, "user.d", buf, sizeof buf);
    printf("dir get: %zd %.*s\n", n, (int)n, buf);
    list("dir list", listxattr(d, buf, sizeof buf), buf);
    printf("lset symlink: %s\n", E(lsetxattr(l, "user.x", "1", 1, 0)));
    printf("lget symlink: %s\n", E(lgetxattr(l, "user.x", buf, sizeof buf)));
    list("llist symlink", llistxattr(l, buf, sizeof buf), buf);
    n = getxattr(l, "user.a", buf, sizeof buf);
    printf("get through symlink: %zd %.*s\n", n, (int)n, buf);
    printf("lset trusted on symlink: %s\n", E(lsetxattr(l, "trusted.t", "1", 1, 0)));
    list("llist symlink", llistxattr(l, buf, sizeof buf), buf);
    printf("fifo set: %s\n", E(setxattr(fifo, "user.x", "1", 1, 0)));
    printf("fifo get: %s\n", E(getxattr(fifo, "user.x", buf, sizeof buf)));
    int p[2];
    pipe(p);
    printf("pipe fset: %s\n", E(fsetxattr(p[0], "user.x", "1", 1, 0)));
    printf("pipe fget: %s\n", E(fgetxattr(p[0], "user.x", buf, sizeof buf)));
    printf("trusted set: %s\n", E(setxattr(f, "trusted.t", "tv", 2, 0)));
    printf("security set: %s\n", E(setxattr(f, "security.s", "sv", 2, 0)));
    list("all", listxattr(f, buf, sizeof buf), buf);
    printf("missing file: %s\n", E(getxattr("/nonexistent/x", "user.a", buf, sizeof buf)));
    printf("bad fd: %s\n", E(fgetxattr(99, "user.a", buf, sizeof buf)));
    int op = open(f, O_PATH);
    printf("O_PATH fd: %s\n", E(fgetxattr(op, "user.a", buf, sizeof buf)));
    printf("proc set: %s\n", E(setxattr("/proc/self/status", "user.a", "1", 1, 0)));
    printf("proc get: %s\n", E(getxattr("/proc/self/status", "user.a", buf, sizeof buf)));
    printf("proc list: %zd\n", listxattr("/proc/self/status", buf, sizeof buf));
    printf("efault name: %s\n", E(getxattr(f, (char *)8, buf, sizeof buf)));
    return 0;
}
"#;

#[test]
fn xattr_semantics() {
    let dir = TempDir::new("xattr");
    let exe = compile_static_c(&dir, "xattr", &program(XATTR));
    let native = TempDir::new("xattr-native");
    let n = Invocation::new(&[exe.to_str().unwrap(), native.path().to_str().unwrap()]).run_native();
    let sandboxed = TempDir::new("xattr-rvisor");
    let r =
        Invocation::new(&[exe.to_str().unwrap(), sandboxed.path().to_str().unwrap()]).run_rvisor();
    rvisor_tests::assert_outputs_equal(&n, &r);
}

/// user.* on host files reached through the gofer (the root written
/// through with `--overlay none`): what Linux does, and the host keeps
/// what was set. trusted.* and security.* writes are left out: the gofer
/// refuses them (EPERM) where the host's root may.
const XATTR_HOST: &str = r#"

static void list(const char *what, ssize_t n, char *buf) {
    if (n < 0) { printf("%s: %s\n", what, strerror(errno)); return; }
    char *names[64]; int k = 0;
    for (char *p = buf; p < buf + n && k < 64; p += strlen(p) + 1)
        if (strncmp(p, "security.", 9)) names[k++] = p;
    qsort(names, k, sizeof names[0], cmp);
    printf("%s:", what);
    for (int i = 0; i < k; i++) printf(" %s", names[i]);
    printf("\n");
}

int main(int argc, char **argv) {
    SETUP_AND_BASICS
    list("list", listxattr(f, buf, sizeof buf), buf);
    printf("list small: %s\n", E(listxattr(f, buf, 3)));
    list("flist", flistxattr(fd, buf, sizeof buf), buf);
    char longname[300];
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "user.", 5);
    longname[256] = 0;
    printf("name 256: %s\n", E(setxattr(f, longname, "x", 1, 0)));
    longname[255] = 0;
    printf("name 255: %s\n", E(setxattr(f, longname, "x", 1, 0)));
    printf("remove name 255: %s\n", E(removexattr(f, longname)));
    printf("bare prefix: %s\n", E(setxattr(f, "user.", "x", 1, 0)));
    printf("unknown namespace: %s\n", E(setxattr(f, "foo.bar", "x", 1, 0)));
    static char big[70000];
    printf("value 65537: %s\n", E(setxattr(f, "user.big", big, 65537, 0)));
    printf("value 1000: %s\n", E(setxattr(f, "user.big", big, 1000, 0)));
    printf("get 1000: %zd\n", getxattr(f, "user.big", big, sizeof big));
    printf("remove: %s\n", E(removexattr(f, "user.big")));
    printf("remove again: %s\n", E(removexattr(f, "user.big")));
    printf("fremove: %s\n", E(fremovexattr(fd, "user.b")));
    printf("dir set: %s\n", E(setxattr(d, "user.d", "dv", 2, 0)));
    n = getxattr(d, "user.d", buf, sizeof buf);
    printf("dir get: %zd %.*s\n", n, (int)n, buf);
    list("dir list", listxattr(d, buf, sizeof buf), buf);
    printf("lset symlink: %s\n", E(lsetxattr(l, "user.x", "1", 1, 0)));
    printf("lget symlink: %s\n", E(lgetxattr(l, "user.x", buf, sizeof buf)));
    list("llist symlink", llistxattr(l, buf, sizeof buf), buf);
    n = getxattr(l, "user.a", buf, sizeof buf);
    printf("get through symlink: %zd %.*s\n", n, (int)n, buf);
    printf("fifo set: %s\n", E(setxattr(fifo, "user.x", "1", 1, 0)));
    printf("fifo get: %s\n", E(getxattr(fifo, "user.x", buf, sizeof buf)));
    printf("chmod 0: %s\n", E(fchmod(fd, 0)));
    printf("set mode 0 as root: %s\n", E(setxattr(f, "user.kept", "yes", 3, 0)));
    return 0;
}
"#;

/// Host view of an attribute (not following symlinks).
fn host_getxattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 65536];
    // SAFETY: valid C strings and a buffer writable for its length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let r = usize::try_from(r).ok()?;
    buf.truncate(r);
    Some(buf)
}

fn host_setxattr(path: &std::path::Path, name: &str, value: &[u8]) {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C strings and a readable value buffer.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr {name}: {}", std::io::Error::last_os_error());
}

#[test]
fn xattr_through_the_gofer() {
    let dir = TempDir::new("xattr-host");
    let exe = compile_static_c(&dir, "xattr_host", &program(XATTR_HOST));
    let native = dir.join("native");
    let sandboxed = dir.join("rvisor");
    std::fs::create_dir(&native).expect("mkdir");
    std::fs::create_dir(&sandboxed).expect("mkdir");
    let n = Invocation::new(&[exe.to_str().unwrap(), native.to_str().unwrap()]).run_native();
    let r = Invocation::new(&[exe.to_str().unwrap(), sandboxed.to_str().unwrap()])
        .rvisor_arg("--overlay")
        .rvisor_arg("none")
        .run_rvisor();
    rvisor_tests::assert_outputs_equal(&n, &r);
    assert!(
        n.stdout_str().contains("get: 5 hello"),
        "{}",
        n.stdout_str()
    );
    // The host file carries what the sandbox set, and not what it removed.
    let f = sandboxed.join("file");
    assert_eq!(host_getxattr(&f, "user.a").as_deref(), Some(&b"world!"[..]));
    assert_eq!(host_getxattr(&f, "user.kept").as_deref(), Some(&b"yes"[..]));
    assert_eq!(host_getxattr(&f, "user.big"), None);
    assert_eq!(
        host_getxattr(&sandboxed.join("dir"), "user.d").as_deref(),
        Some(&b"dv"[..])
    );
}

/// Attributes the host set on rootfs files, read in the default overlay
/// mode; a change copies the file up with all its attributes and stays
/// in the sandbox.
const XATTR_LOWER: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#define E(x) ((x) < 0 ? strerror(errno) : "ok")

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

static void list(const char *what, ssize_t n, char *buf) {
    if (n < 0) { printf("%s: %s\n", what, strerror(errno)); return; }
    char *names[64]; int k = 0;
    for (char *p = buf; p < buf + n && k < 64; p += strlen(p) + 1) names[k++] = p;
    qsort(names, k, sizeof names[0], cmp);
    printf("%s:", what);
    for (int i = 0; i < k; i++) printf(" %s", names[i]);
    printf("\n");
}

static void get(const char *p, const char *name) {
    char buf[256];
    ssize_t n = lgetxattr(p, name, buf, sizeof buf);
    if (n < 0) printf("get %s: %s\n", name, strerror(errno));
    else printf("get %s: %.*s\n", name, (int)n, buf);
}

int main(int argc, char **argv) {
    char f[256], d[256], buf[1024];
    snprintf(f, sizeof f, "%s/file", argv[1]);
    snprintf(d, sizeof d, "%s/dir", argv[1]);
    list("file", listxattr(f, buf, sizeof buf), buf);
    get(f, "user.color");
    get(f, "security.test");
    get(f, "user.none");
    printf("size query: %zd\n", getxattr(f, "user.color", NULL, 0));
    list("dir", listxattr(d, buf, sizeof buf), buf);
    get(d, "user.dir");
    /* A change: the file is copied up with its attributes. */
    printf("set: %s\n", E(setxattr(f, "user.new", "n", 1, 0)));
    printf("create existing: %s\n", E(setxattr(f, "user.color", "x", 1, XATTR_CREATE)));
    list("file after set", listxattr(f, buf, sizeof buf), buf);
    get(f, "user.color");
    printf("remove: %s\n", E(removexattr(f, "user.color")));
    list("file after remove", listxattr(f, buf, sizeof buf), buf);
    printf("dir remove: %s\n", E(removexattr(d, "user.dir")));
    printf("dir set: %s\n", E(setxattr(d, "user.dir2", "2", 1, 0)));
    list("dir after", listxattr(d, buf, sizeof buf), buf);
    return 0;
}
"#;

#[test]
fn xattr_of_lower_files() {
    let dir = TempDir::new("xattr-lower");
    let exe = compile_static_c(&dir, "xattr_lower", XATTR_LOWER);
    let mut outs = Vec::new();
    for side in ["native", "rvisor"] {
        let work = dir.join(side);
        std::fs::create_dir(&work).expect("mkdir");
        std::fs::create_dir(work.join("dir")).expect("mkdir");
        std::fs::write(work.join("file"), b"data").expect("write");
        host_setxattr(&work.join("file"), "user.color", b"blue");
        host_setxattr(&work.join("file"), "user.size", b"L");
        host_setxattr(&work.join("file"), "security.test", b"sec");
        host_setxattr(&work.join("dir"), "user.dir", b"d");
        let inv = Invocation::new(&[exe.to_str().unwrap(), work.to_str().unwrap()]);
        outs.push(if side == "native" {
            inv.run_native()
        } else {
            inv.run_rvisor()
        });
    }
    rvisor_tests::assert_outputs_equal(&outs[0], &outs[1]);
    let out = outs[0].stdout_str();
    assert!(out.contains("get user.color: blue"), "{out}");
    // The sandbox's changes stayed in its memory.
    let f = dir.join("rvisor").join("file");
    assert_eq!(
        host_getxattr(&f, "user.color").as_deref(),
        Some(&b"blue"[..])
    );
    assert_eq!(host_getxattr(&f, "user.new"), None);
    assert_eq!(
        host_getxattr(&dir.join("rvisor").join("dir"), "user.dir").as_deref(),
        Some(&b"d"[..])
    );
}
