//! scripts/loopback-ns.sh, which the interop run uses: inside, only `lo`, a private /tmp — and
//! a checkout under /tmp still where it was, with the `shared` folder beside it (a clone in
//! /tmp once failed the whole interop step with "could not find Cargo.toml").

use std::process::Command;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_checkout_under_tmp_stays_visible_behind_the_private_tmp() {
    if !is_root() {
        eprintln!("skipped: the loopback namespace needs root");
        return;
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/loopback-ns.sh");
    let base = tempfile::Builder::new()
        .prefix("clawpair-ns-")
        .tempdir_in("/tmp")
        .unwrap();
    let checkout = base.path().join("main");
    let shared = base.path().join("shared");
    std::fs::create_dir_all(&checkout).unwrap();
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(checkout.join("Cargo.toml"), "here").unwrap();
    std::fs::write(shared.join("SPEC.md"), "beside").unwrap();
    // Something of the host's /tmp that must not show inside.
    let host_only = tempfile::NamedTempFile::new_in("/tmp").unwrap();
    // By absolute paths, as cargo resolves them (the working directory alone would still
    // reach a hidden checkout).
    let check = format!(
        "cat {c}/Cargo.toml {s}/SPEC.md && test ! -e {h} && ip -o link | grep -c . ",
        c = checkout.display(),
        s = shared.display(),
        h = host_only.path().display()
    );
    let out = Command::new(&script)
        .args(["sh", "-c", &check])
        .current_dir(&checkout)
        .output()
        .expect("run loopback-ns.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "herebeside1\n", "the files, and only `lo`");
    // The host's /tmp is as it was: nothing left behind.
    assert!(checkout.join("Cargo.toml").exists() && host_only.path().exists());
}
