//! Shared by the web UI's browser tests (`tests/e2e_ui.rs`): a `kubectl dag ui` process, a
//! chromedriver + headless Chromium session with the page reads the tests need, and Dag
//! manifests. Included with `#[path]` (not a test target).

#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use crate::common::{POLL_EVERY, STEP_IMAGE, WAIT, log_dir};
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use kubedag::testkit::http::free_port;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A `kubectl dag ui` process of this test; killed when dropped.
pub struct Ui {
    pub base: String,
    _child: Child,
}

impl Ui {
    /// Starts the UI on a free port for namespace `ns`, with `kubeconfig` (default: the test's).
    pub async fn start(ns: &str, kubeconfig: Option<&str>) -> Ui {
        let stderr =
            std::fs::File::create(format!("{}/{ns}.kubectl-dag-ui.log", log_dir())).expect("the UI's log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-dag"));
        command
            .args(["-n", ns, "ui", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        if let Some(path) = kubeconfig {
            command.env("KUBECONFIG", path);
        }
        let mut child = command.spawn().expect("start kubectl-dag ui");
        let stdout = child.stdout.take().expect("its stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the UI prints its URL")
            .expect("read its stdout")
            .expect("a first line");
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .trim_end_matches('/')
            .to_string();
        // Kept read, so a later line cannot fail on a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ui { base, _child: child }
    }
}

/// What [`Session::poll_page`] does with a page Chromium abandoned on a network change.
enum Abandoned {
    /// Open its URL again: it was a GET.
    OpenAgain,
    /// Return None: it was a form POST, which only its caller may repeat.
    Stop,
}

/// A chromedriver process and a headless Chromium session.
pub struct Session {
    pub browser: Browser,
    _driver: Child,
}

impl Session {
    pub async fn start() -> Session {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver (install with e2e/ui-deps.sh)");
        let binary = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromium (install with e2e/ui-deps.sh)");
        let capabilities = json!({"goog:chromeOptions": {
            "binary": binary,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--force-device-scale-factor=1"],
        }});
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities);
        let mut last_error = String::new();
        for _ in 0..100 {
            match builder.connect(&url).await {
                Ok(browser) => {
                    return Session {
                        browser,
                        _driver: driver,
                    };
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("cannot open a Chromium session through chromedriver: {last_error}");
    }

    /// Polls `check` (as `TestEnv::eventually` does) until it returns Some. A page Chromium
    /// abandoned on a network change (see [`Session::submit`]) is opened again. On a timeout the
    /// page is left behind for reading (see [`Session::give_up`]) and the test fails.
    pub async fn eventually<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        match self.poll_page(what, check, Abandoned::OpenAgain).await {
            Some(value) => value,
            None => unreachable!("a page abandoned on a network change is opened again"),
        }
    }

    /// Submits a form as a user would: `prepare(n)` opens and fills it for attempt `n` (from 0),
    /// `button` is clicked, and `outcome` is polled as in [`Session::eventually`]. Returns the
    /// outcome and the attempt that reached it.
    ///
    /// Chromium watches the host's network interfaces, and a request it abandons on a change
    /// ends on its `ERR_NETWORK_CHANGED` page. The test node's interfaces change as other tests'
    /// pods come and go (a veth each): in `make test` and in runs of `e2e_ui` alone (2 of 5 on
    /// 2026-12-04) a form POST or a page load landed on that page. A POST is not repeated
    /// behind the user's back, so the attempt is made again here, at most `SUBMIT_ATTEMPTS`
    /// times in all; any other page, or a timeout, fails the test.
    pub async fn submit<T, P, PFut, F, Fut>(
        &self,
        what: &str,
        mut prepare: P,
        button: &str,
        mut outcome: F,
    ) -> (T, usize)
    where
        P: FnMut(usize) -> PFut,
        PFut: std::future::Future<Output = ()>,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        const SUBMIT_ATTEMPTS: usize = 3;
        for attempt in 0..SUBMIT_ATTEMPTS {
            prepare(attempt).await;
            self.click(button).await;
            if let Some(value) = self.poll_page(what, &mut outcome, Abandoned::Stop).await {
                return (value, attempt);
            }
            eprintln!("{what}: Chromium abandoned attempt {attempt} with ERR_NETWORK_CHANGED");
        }
        self.give_up(what).await
    }

    /// Polls `check` every `POLL_EVERY` for up to `WAIT`, then gives up. None: Chromium
    /// abandoned the page on a network change and `abandoned` is [`Abandoned::Stop`].
    async fn poll_page<T, F, Fut>(&self, what: &str, mut check: F, abandoned: Abandoned) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(value) = check().await {
                return Some(value);
            }
            if self.network_changed().await {
                match abandoned {
                    Abandoned::Stop => return None,
                    Abandoned::OpenAgain => {
                        let url = self.browser.current_url().await.expect("the abandoned page's URL");
                        self.goto(url.as_str()).await;
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                self.give_up(what).await;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Whether the page is Chromium's own error page for a request abandoned on a network change.
    async fn network_changed(&self) -> bool {
        self.browser
            .source()
            .await
            .is_ok_and(|page| page.contains("ERR_NETWORK_CHANGED"))
    }

    /// Fails the test waiting for `what`, leaving the page behind for reading as
    /// `target/e2e-logs/ui-page-NAME.{html,png,url}` (NAME from `what`) and naming those files.
    async fn give_up(&self, what: &str) -> ! {
        let slug: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let stem = format!("{}/ui-page-{slug}", log_dir());
        let url = self.browser.current_url().await.map(|u| u.to_string());
        let source = self.browser.source().await;
        let png = self.browser.screenshot().await;
        let _ = std::fs::write(format!("{stem}.url"), format!("{url:?}\n"));
        let _ = std::fs::write(format!("{stem}.html"), source.unwrap_or_else(|e| e.to_string()));
        if let Ok(png) = png {
            let _ = std::fs::write(format!("{stem}.png"), png);
        }
        panic!("timed out waiting for {what} in the browser (at {url:?}; the page: {stem}.html and .png)");
    }

    /// Opens `url`, again should Chromium abandon it on a network change (see
    /// [`Session::submit`]), at most `OPEN_ATTEMPTS` times in all: a GET is safe to repeat.
    pub async fn goto(&self, url: &str) {
        const OPEN_ATTEMPTS: usize = 3;
        for attempt in 1..=OPEN_ATTEMPTS {
            self.browser
                .goto(url)
                .await
                .unwrap_or_else(|e| panic!("open {url}: {e}"));
            if !self.network_changed().await {
                return;
            }
            eprintln!("open {url}: Chromium abandoned attempt {attempt} with ERR_NETWORK_CHANGED");
        }
        panic!("open {url}: Chromium abandoned all {OPEN_ATTEMPTS} attempts with ERR_NETWORK_CHANGED");
    }

    /// Texts of the elements matching `css` (none: empty). A failing WebDriver session panics
    /// here, so a dead browser is named instead of read as an empty page until a wait times out.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        let found = self.browser.find_all(Locator::Css(css)).await;
        for element in found.unwrap_or_else(|e| panic!("find {css}: {e}")) {
            texts.push(element.text().await.unwrap_or_default());
        }
        texts
    }

    pub async fn text(&self, css: &str) -> String {
        self.texts(css).await.join("\n")
    }

    /// Types `value` into the input `css` (cleared first).
    pub async fn fill(&self, css: &str, value: &str) {
        let input = self.browser.find(Locator::Css(css)).await.expect(css);
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
        // A required input left empty makes a submit click do nothing (the browser's form
        // validation), which would surface only as a timeout later.
        let held = input.prop("value").await.unwrap();
        assert_eq!(held.as_deref(), Some(value), "typed {value:?} into {css}");
    }

    /// The element `css` (which must exist).
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.browser
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    pub async fn click(&self, css: &str) {
        self.browser
            .find(Locator::Css(css))
            .await
            .expect(css)
            .click()
            .await
            .unwrap();
    }

    /// Saves the viewport as `docs/ui/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.browser.screenshot().await.expect("a screenshot");
        let dir = format!("{}/docs/ui", env!("CARGO_MANIFEST_DIR"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }

    /// (step, phase, fill) of each node of the run page's graph. Empty when a live update
    /// replaced the graph while it was being read (callers poll, so the next read sees the new one).
    pub async fn graph_nodes(&self) -> Vec<(String, String, String)> {
        let mut nodes = Vec::new();
        for node in self
            .browser
            .find_all(Locator::Css("#graph g.node"))
            .await
            .unwrap_or_default()
        {
            let step = node.attr("data-step").await.ok().flatten().unwrap_or_default();
            let phase = node.attr("data-phase").await.ok().flatten().unwrap_or_default();
            let Ok(rect) = node.find(Locator::Css("rect.box")).await else {
                return Vec::new();
            };
            let fill = rect.attr("fill").await.ok().flatten().unwrap_or_default();
            nodes.push((step, phase, fill));
        }
        nodes.sort();
        nodes
    }
}

/// A Dag manifest with params and shell-script steps `(name, depends, script)`.
pub fn dag_yaml(name: &str, policy: &str, params: &[(&str, Option<&str>)], steps: &[(&str, &[&str], &str)]) -> String {
    let params: Vec<_> = params
        .iter()
        .map(|(n, d)| match d {
            Some(d) => json!({"name": n, "default": d}),
            None => json!({"name": n}),
        })
        .collect();
    let steps: Vec<_> = steps
        .iter()
        .map(|(n, deps, script)| json!({"name": n, "depends": deps, "script": script}))
        .collect();
    let dag = json!({
        "apiVersion": "kubedag.io/v1alpha1", "kind": "Dag", "metadata": {"name": name},
        "spec": {"params": params, "duplicatePolicy": policy,
                 "defaults": {"image": STEP_IMAGE, "imagePullPolicy": "IfNotPresent"}, "steps": steps},
    });
    serde_yaml::to_string(&dag).unwrap()
}
