//! dnotify (fcntl F_NOTIFY): SIGIO for changes in a directory, one-shot or
//! multishot, and its errors. Differential.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const DNOTIFY: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static volatile int hits;
static void on_io(int s) { (void)s; hits++; }
static void touch(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    close(open(p, O_CREAT | O_WRONLY, 0644));
}
int main(int argc, char **argv) {
    signal(SIGIO, on_io);
    char p[512];
    const char *names[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) { snprintf(p, sizeof p, "%s/%s", argv[1], names[i]); unlink(p); }
    int d = open(argv[1], O_RDONLY | O_DIRECTORY);
    printf("one-shot: %d\n", fcntl(d, F_NOTIFY, DN_CREATE));
    touch(argv[1], "a");
    touch(argv[1], "b");
    printf("hits after two creates: %d\n", hits);
    hits = 0;
    printf("multishot: %d\n", fcntl(d, F_NOTIFY, DN_CREATE | DN_DELETE | DN_MULTISHOT));
    touch(argv[1], "c");
    snprintf(p, sizeof p, "%s/a", argv[1]);
    unlink(p);
    printf("hits after create and delete: %d\n", hits);
    hits = 0;
    printf("other events only: %d\n", fcntl(d, F_NOTIFY, DN_ATTRIB));
    touch(argv[1], "d");
    printf("hits for a create: %d\n", hits);
    int f = open(argv[0], O_RDONLY);
    printf("on a file: %s\n", fcntl(f, F_NOTIFY, DN_CREATE) < 0 ? strerrorname_np(errno) : "ok");
    printf("cleared: %d\n", fcntl(d, F_NOTIFY, 0));
    close(d);
    return 0;
}
"#;

#[test]
fn dnotify_signals_changes() {
    let dir = TempDir::new("dnotify");
    let exe = compile_static_c(&dir, "dnotify", DNOTIFY);
    let work = dir.join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    let (native, _) =
        Invocation::new(&[exe.to_str().unwrap(), work.to_str().unwrap()]).assert_same();
    let out = native.stdout_str();
    assert!(out.contains("hits after two creates: 1"), "{out}");
    assert!(out.contains("hits after create and delete: 2"), "{out}");
}
