//! Tests that run one of their own binary's tests again in a child process (the settings are
//! process-wide, so another configuration, or "another process", needs one).

use std::process::Command;

/// A command that runs the test `name` of this test binary, alone, in a child process; add its
/// environment, then hand it to [`passes()`].
pub fn test(name: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command.args(["--exact", name, "--nocapture", "--test-threads", "1"]);
    command
}

/// Runs `command` (from [`test()`]) and fails unless the child ran exactly one test, which
/// passed: a child that finds no test by that name would otherwise succeed having checked
/// nothing.
pub fn passes(mut command: Command) {
    // The child's output goes to a file, not a pipe: a server the child starts inherits its
    // stdout and would hold a pipe open after the child ended.
    let path = std::env::temp_dir().join(format!(
        "cache-runtime-child-{}-{}.out",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let file = std::fs::File::create(&path).expect("a file for the child's output");
    let status = command
        .stdout(file)
        .status()
        .expect("the child process runs");
    let stdout = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    assert!(status.success(), "the child process failed:\n{stdout}");
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child ran no test:\n{stdout}"
    );
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
