//! A minimal W3C WebDriver client for tauri-driver (which hands the session to WebKitWebDriver).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// WebDriver's codes for the keys that are not characters.
pub mod key {
    pub const TAB: &str = "\u{E004}";
    pub const ENTER: &str = "\u{E007}";
    pub const SHIFT: &str = "\u{E008}";
    pub const CONTROL: &str = "\u{E009}";
    pub const ALT: &str = "\u{E00A}";
    pub const ESCAPE: &str = "\u{E00C}";
    pub const SPACE: &str = "\u{E00D}";
    pub const BACKSPACE: &str = "\u{E003}";
}

pub struct Session {
    base: String,
    id: String,
}

/// A session a test leaves behind (it panicked) still ends, and its app with it: an app left
/// running would hold the single-instance lock and stall every later test's session.
impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

fn post(url: &str, body: Value) -> Result<Value, String> {
    match ureq::post(url)
        .timeout(Duration::from_secs(60))
        .send_json(body)
    {
        Ok(r) => r.into_json::<Value>().map_err(|e| e.to_string()),
        Err(ureq::Error::Status(code, r)) => {
            Err(format!("{code}: {}", r.into_string().unwrap_or_default()))
        }
        Err(e) => Err(e.to_string()),
    }
}

fn get(url: &str) -> Result<Value, String> {
    match ureq::get(url).timeout(Duration::from_secs(60)).call() {
        Ok(r) => r.into_json::<Value>().map_err(|e| e.to_string()),
        Err(ureq::Error::Status(code, r)) => {
            Err(format!("{code}: {}", r.into_string().unwrap_or_default()))
        }
        Err(e) => Err(e.to_string()),
    }
}

impl Session {
    /// Starts the app through tauri-driver. Only `tauri:options`, no `browserName`.
    pub fn start(driver: &str, application: &str, args: &[String]) -> Session {
        let caps = json!({ "capabilities": { "alwaysMatch": { "tauri:options": { "application": application, "args": args } } } });
        let v = post(&format!("{driver}/session"), caps).expect("new WebDriver session");
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {v}"))
            .to_string();
        Session {
            base: format!("{driver}/session/{id}"),
            id,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn find(&self, css: &str) -> Option<String> {
        let v = post(
            &format!("{}/element", self.base),
            json!({ "using": "css selector", "value": css }),
        )
        .ok()?;
        v["value"][ELEMENT].as_str().map(String::from)
    }

    /// Every element matching `css`, in document order.
    pub fn find_all(&self, css: &str) -> Vec<String> {
        post(
            &format!("{}/elements", self.base),
            json!({ "using": "css selector", "value": css }),
        )
        .ok()
        .and_then(|v| v["value"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e[ELEMENT].as_str().map(String::from))
        .collect()
    }

    /// Waits until an element matching `css` exists and is displayed.
    pub fn wait_for(&self, css: &str, wait: Duration) -> String {
        let end = Instant::now() + wait;
        loop {
            if let Some(e) = self.find(css) {
                if self.displayed(&e) {
                    return e;
                }
            }
            assert!(Instant::now() < end, "{css} did not appear within {wait:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn displayed(&self, element: &str) -> bool {
        get(&format!("{}/element/{element}/displayed", self.base))
            .map(|v| v["value"] == true)
            .unwrap_or(false)
    }

    pub fn click(&self, css: &str) {
        let e = self.wait_for(css, Duration::from_secs(20));
        post(&format!("{}/element/{e}/click", self.base), json!({}))
            .unwrap_or_else(|err| panic!("click {css}: {err}"));
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.wait_for(css, Duration::from_secs(20));
        get(&format!("{}/element/{e}/text", self.base))
            .map(|v| v["value"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_for(css, Duration::from_secs(20));
        let _ = post(&format!("{}/element/{e}/clear", self.base), json!({}));
        post(
            &format!("{}/element/{e}/value", self.base),
            json!({ "text": text }),
        )
        .unwrap_or_else(|err| panic!("type into {css}: {err}"));
    }

    pub fn execute(&self, script: &str) -> Value {
        self.try_execute(script).unwrap_or(Value::Null)
    }

    /// Runs `script` as the body of a function in the page; an exception is an error.
    pub fn try_execute(&self, script: &str) -> Result<Value, String> {
        post(
            &format!("{}/execute/sync", self.base),
            json!({ "script": script, "args": [] }),
        )
        .map(|v| v["value"].clone())
    }

    /// Runs `script` and waits for it to call its last argument (the callback) with the result.
    pub fn execute_async(&self, script: &str) -> Result<Value, String> {
        post(
            &format!("{}/execute/async", self.base),
            json!({ "script": script, "args": [] }),
        )
        .map(|v| v["value"].clone())
    }

    /// Presses and releases each key in turn, into whatever has the focus (no element is
    /// clicked or focused by the driver).
    pub fn press(&self, keys: &[&str]) {
        let actions: Vec<Value> = keys
            .iter()
            .flat_map(|k| {
                [
                    json!({ "type": "keyDown", "value": k }),
                    json!({ "type": "keyUp", "value": k }),
                ]
            })
            .collect();
        self.key_actions(actions);
    }

    /// Holds `modifiers` down while pressing `key` (Alt+1, Shift+Tab, Ctrl+V…).
    pub fn chord(&self, modifiers: &[&str], key: &str) {
        let mut actions: Vec<Value> = modifiers
            .iter()
            .map(|m| json!({ "type": "keyDown", "value": m }))
            .collect();
        actions.push(json!({ "type": "keyDown", "value": key }));
        actions.push(json!({ "type": "keyUp", "value": key }));
        actions.extend(
            modifiers
                .iter()
                .rev()
                .map(|m| json!({ "type": "keyUp", "value": m })),
        );
        self.key_actions(actions);
    }

    fn key_actions(&self, actions: Vec<Value>) {
        let url = format!("{}/actions", self.base);
        post(
            &url,
            json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] }),
        )
        .unwrap_or_else(|err| panic!("key actions: {err}"));
        let _ = ureq::delete(&url).timeout(Duration::from_secs(20)).call();
    }

    /// The accessible name the engine computes for an element.
    pub fn computed_label(&self, element: &str) -> String {
        get(&format!("{}/element/{element}/computedlabel", self.base))
            .map(|v| v["value"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    /// Waits until `script` (a JS expression) is truthy.
    pub fn wait_until(&self, script: &str, wait: Duration) {
        let end = Instant::now() + wait;
        loop {
            let v = self.execute(&format!("return !!({script});"));
            if v == true {
                return;
            }
            assert!(
                Instant::now() < end,
                "{script} did not become true within {wait:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asserts that the element's text says each of `words`, showing the text when it does not.
    pub fn says(&self, css: &str, words: &[&str]) {
        let text = self.text(css);
        for w in words {
            assert!(text.contains(w), "{css} does not say {w:?}: {text}");
        }
    }

    /// Waits until nothing matches `css` (a list emptied, a card gone).
    pub fn wait_none(&self, css: &str, wait: Duration) {
        let css = serde_json::to_string(css).unwrap_or_default();
        self.wait_until(
            &format!("document.querySelectorAll({css}).length === 0"),
            wait,
        );
    }

    /// Resizes the window (outer size, in pixels).
    pub fn set_window_size(&self, width: u32, height: u32) {
        let _ = post(
            &format!("{}/window/rect", self.base),
            json!({ "width": width, "height": height }),
        );
    }

    /// The window as a PNG.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = get(&format!("{}/screenshot", self.base)).expect("screenshot");
        base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap_or_default())
            .expect("base64 screenshot")
    }

    pub fn end(self) {
        self.close();
    }

    /// Ends the session (the app quits with it); harmless when it has ended already.
    pub fn close(&self) {
        let _ = ureq::delete(&self.base)
            .timeout(Duration::from_secs(20))
            .call();
    }
}
