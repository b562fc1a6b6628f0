//! The Debian package as a user gets it: built by `scripts/package-deb.sh` (scripts/test.sh runs
//! it first), checked with dpkg-deb and desktop-file-validate, and its binary run from an
//! extracted copy: `--version`, and a gateway that answers a connect.

/// The `clawpair` the app ships, built here as `clawpair-app`.
const CLAWPAIR: &str = env!("CARGO_BIN_EXE_clawpair-app");

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clawpair_core::client::{Client, ConnectOptions};

fn the_deb() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/bundle/deb");
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/package-deb.sh first)", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort();
    debs.pop().expect("a .deb in target/release/bundle/deb")
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("run");
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
#[ignore = "needs the .deb from scripts/package-deb.sh: run by scripts/test.sh"]
fn package_installs_the_binary_a_desktop_entry_and_icons_and_declares_its_libraries() {
    let deb = the_deb();
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    // Paths as dpkg-deb lists them, with or without a leading "./".
    let paths: Vec<String> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches("./").to_string())
        .collect();
    assert!(paths.iter().any(|p| p == "usr/bin/clawpair"), "{listing}");
    let desktop = paths
        .iter()
        .find(|p| p.starts_with("usr/share/applications/") && p.ends_with(".desktop"))
        .unwrap_or_else(|| panic!("no desktop entry in {listing}"))
        .clone();
    for size in ["32x32", "128x128", "256x256@2", "512x512"] {
        let icon = format!("usr/share/icons/hicolor/{size}/apps/clawpair.png");
        assert!(paths.contains(&icon), "icon {size} missing: {listing}");
    }
    let info = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
    assert!(
        info.lines().any(|l| l.trim() == "Package: clawpair"),
        "a lowercase Debian package name: {info}"
    );
    let depends = info
        .lines()
        .find(|l| l.trim_start().starts_with("Depends:"))
        .unwrap_or_else(|| panic!("no Depends in {info}"));
    assert!(depends.contains("libwebkit2gtk-4.1-0"), "{depends}");
    assert!(depends.contains("libayatana-appindicator3-1"), "{depends}");

    let tmp = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(tmp.path()));
    let entry = tmp.path().join(&desktop);
    run(Command::new("desktop-file-validate").arg(&entry));
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.contains("\nName=ClawPair\n"), "{text}");
    assert!(
        text.contains("\nExec=clawpair\n"),
        "menu entry starts the app: {text}"
    );
    assert!(
        text.contains("Exec=clawpair --hidden"),
        "tray-only action: {text}"
    );

    let bin = tmp.path().join("usr/bin/clawpair");
    let v = run(Command::new(&bin).arg("--version"));
    assert_eq!(v.trim(), format!("clawpair {}", env!("CARGO_PKG_VERSION")));

    // The packaged gateway answers a connect.
    let state = tmp.path().join("state");
    let mut gw = Command::new(&bin)
        .arg("--state-dir")
        .arg(&state)
        .args(["gateway", "--port", "0"])
        .spawn()
        .expect("start the packaged gateway");
    let rec = state.join("run/gateway.json");
    let end = Instant::now() + Duration::from_secs(20);
    while !rec.exists() {
        assert!(Instant::now() < end, "the packaged gateway did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rec).unwrap()).unwrap();
    let settings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("clawpair.json")).unwrap())
            .unwrap();
    let url = format!("ws://{}/", rec["address"].as_str().unwrap());
    let token = settings["gateway"]["auth"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hello = rt.block_on(async {
        Client::connect(
            &ConnectOptions::operator(&url, &token, "package-test"),
            |_, _| {},
        )
        .await
        .map(|c| c.hello)
    });
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(gw.id().to_string())
        .status();
    let _ = gw.wait();
    assert_eq!(
        hello.expect("hello-ok from the packaged gateway")["type"],
        "hello-ok"
    );
}
