//! Accessibility checks of the real window: axe-core (vendored in tests/fixtures/axe, never in
//! the app) sent in through WebDriver and run on what the window shows, and a layout check
//! that nothing is cut off. Every report is kept under `target/a11y-report/<run>/`, with a
//! screenshot of each checked state when `CLAWPAIR_A11Y_SCREENSHOTS` is set.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::webdriver::Session;

/// The WCAG 2.1 rules, levels A and AA, that axe-core knows.
const TAGS: &str = "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']";

/// Where the reports go: `$CLAWPAIR_A11Y_REPORT`, else `a11y-report/` in the target directory.
pub fn report_root() -> PathBuf {
    if let Ok(dir) = std::env::var("CLAWPAIR_A11Y_REPORT") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("a11y-report")
}

/// One run of checks (one test): collects what failed, so one run names every problem.
pub struct Audit {
    source: String,
    dir: PathBuf,
    summary: Vec<String>,
    failures: Vec<String>,
}

impl Audit {
    /// Starts a run whose reports go to `report_root()/<run>/` (emptied first).
    pub fn new(run: &str) -> Audit {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/axe/axe.min.js");
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let dir = report_root().join(run);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Audit {
            source,
            dir,
            summary: Vec::new(),
            failures: Vec::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs axe-core's WCAG 2.1 A/AA rules on the whole window as it is now; `what` names the
    /// report (`requests-dark.json`). A violation is recorded, not raised: see `finish`.
    pub fn axe(&mut self, s: &Session, what: &str) {
        let started = std::time::Instant::now();
        self.inject(s);
        let script = format!(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {{ runOnly: {{ type: 'tag', values: {TAGS} }} }})
               .then((r) => done(JSON.stringify(r)), (e) => done(JSON.stringify({{ error: String(e && e.stack || e) }})));"
        );
        let raw = s
            .execute_async(&script)
            .unwrap_or_else(|e| panic!("axe-core on {what}: {e}"));
        let report: Value = serde_json::from_str(raw.as_str().unwrap_or("null"))
            .unwrap_or_else(|e| panic!("axe-core on {what} gave no report ({e}): {raw}"));
        if let Some(err) = report.get("error") {
            panic!("axe-core failed on {what}: {err}");
        }
        let file = self.dir.join(format!("{what}.json"));
        std::fs::write(&file, serde_json::to_string_pretty(&report).unwrap())
            .unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
        if std::env::var_os("CLAWPAIR_A11Y_SCREENSHOTS").is_some() {
            self.keep_screenshot(s, what);
        }
        let count = |k: &str| report[k].as_array().map_or(0, Vec::len);
        let ids = |k: &str| {
            report[k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["id"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        self.summary.push(format!(
            "{what}: {} violations [{}], {} rules passed, {} to review by hand [{}] ({} ms)",
            count("violations"),
            ids("violations"),
            count("passes"),
            count("incomplete"),
            ids("incomplete"),
            started.elapsed().as_millis(),
        ));
        for v in report["violations"].as_array().into_iter().flatten() {
            self.failures.push(describe(what, v));
        }
    }

    /// Records what the layout check finds (see `layout_problems`) under `what`.
    pub fn layout(&mut self, s: &Session, what: &str) {
        let problems = layout_problems(s);
        self.summary
            .push(format!("{what}: {} layout problems", problems.len()));
        for p in problems {
            self.failures.push(format!("{what}: {p}"));
        }
    }

    /// Records a failure found by the test itself.
    pub fn fail(&mut self, what: &str, problem: impl std::fmt::Display) {
        self.failures.push(format!("{what}: {problem}"));
    }

    /// Keeps a screenshot beside the reports (once the latest change is painted).
    pub fn keep_screenshot(&self, s: &Session, name: &str) {
        let _ = s.execute_async(
            "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
        );
        let _ = std::fs::write(self.dir.join(format!("{name}.png")), s.screenshot());
    }

    /// Keeps the page from top to bottom (`name`, `name-2`…; more than the first only when
    /// `CLAWPAIR_A11Y_SCREENSHOTS` is set), then scrolls back up.
    pub fn keep_page(&self, s: &Session, name: &str) {
        self.keep_screenshot(s, name);
        if std::env::var_os("CLAWPAIR_A11Y_SCREENSHOTS").is_none() {
            return;
        }
        for n in 2..=6 {
            let moved = s
                .execute("const y = scrollY; scrollBy(0, innerHeight - 40); return scrollY !== y;");
            if moved != true {
                break;
            }
            self.keep_screenshot(s, &format!("{name}-{n}"));
        }
        s.execute("scrollTo(0, 0);");
    }

    /// Writes `summary.txt` and fails with every violation found in the run, if any.
    pub fn finish(self) {
        let mut text = self.summary.join("\n");
        text.push('\n');
        if !self.failures.is_empty() {
            text.push_str("\nFailures:\n");
            text.push_str(&self.failures.join("\n"));
            text.push('\n');
        }
        let file = self.dir.join("summary.txt");
        std::fs::write(&file, &text).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
        assert!(
            self.failures.is_empty(),
            "accessibility problems (reports in {}):\n{}",
            self.dir.display(),
            self.failures.join("\n")
        );
    }

    /// Sends axe-core in once per page. The window's CSP allows no script that is not the
    /// app's own, so the library's source is the body of the WebDriver script itself.
    fn inject(&self, s: &Session) {
        if s.execute("return typeof window.axe === 'object';") == true {
            return;
        }
        let v = s
            .try_execute(&format!("{}\n;return window.axe.version;", self.source))
            .unwrap_or_else(|e| panic!("inject axe-core: {e}"));
        assert!(v.is_string(), "axe-core did not load: {v}");
    }
}

/// One violation, readable: rule, impact, what it asks, and each element with what is wrong.
fn describe(what: &str, v: &Value) -> String {
    let mut out = format!(
        "{what}: {} ({}): {} <{}>",
        v["id"].as_str().unwrap_or("?"),
        v["impact"].as_str().unwrap_or("?"),
        v["help"].as_str().unwrap_or(""),
        v["helpUrl"].as_str().unwrap_or(""),
    );
    for n in v["nodes"].as_array().into_iter().flatten() {
        let target = n["target"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t.as_str().map_or_else(|| t.to_string(), String::from))
            .collect::<Vec<_>>()
            .join(" > ");
        let why = n["failureSummary"]
            .as_str()
            .unwrap_or("")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("Fix "))
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(&format!("\n    {target}: {why}"));
    }
    out
}

/// What would be lost to someone who cannot see the whole window (at 200% zoom, say): the page
/// scrolling sideways, text cut off by a box that hides its overflow, content spilling out of a
/// box that does not scroll, a control out of reach. A box that scrolls (a wide table) is fine.
pub fn layout_problems(s: &Session) -> Vec<String> {
    let v = s.execute(
        r#"
        const out = [];
        const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
          (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '') +
          ' "' + (e.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 40) + '"';
        const root = document.documentElement;
        if (root.scrollWidth > root.clientWidth + 1)
          out.push('the page scrolls sideways (' + root.scrollWidth + 'px in ' + root.clientWidth + 'px)');
        for (const e of document.querySelectorAll('body *')) {
          if (!e.getClientRects().length || e.closest('.visually-hidden, [hidden]')) continue;
          const cs = getComputedStyle(e);
          if (cs.display === 'inline' || cs.display.startsWith('table') || e.tagName === 'IMG') continue;
          const scrolls = (o) => o === 'auto' || o === 'scroll';
          const wide = e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0;
          const tall = e.scrollHeight > e.clientHeight + 1 && e.clientHeight > 0;
          if (wide && !scrolls(cs.overflowX)) out.push('content spills out sideways: ' + name(e) + ' (' + e.scrollWidth + 'px in ' + e.clientWidth + 'px)');
          if (tall && !scrolls(cs.overflowY) && cs.overflowY !== 'visible') out.push('content is cut off at the bottom: ' + name(e));
        }
        for (const e of document.querySelectorAll('button, input, select, a[href]')) {
          if (!e.getClientRects().length || e.closest('[hidden], dialog:not([open])')) continue;
          const r = e.getBoundingClientRect();
          let scroller = e.parentElement;
          while (scroller && !/(auto|scroll)/.test(getComputedStyle(scroller).overflowX)) scroller = scroller.parentElement;
          if (!scroller && r.right > root.clientWidth + 1) out.push('out of reach on the right: ' + name(e));
        }
        return out;
        "#,
    );
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(String::from))
        .collect()
}
