//! The built-in web client (issue 17): how it is served, and two people chatting with it
//! in two headless Chromium sessions driven over WebDriver, through a graceful server
//! restart.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them). Without them it fails, saying so: a browser test that skips itself silently
//! would pass on a machine that checks nothing.
//!
//! Set `CONCORD_SCREENSHOTS=<dir>` to have the browser test save the sign-in and chat
//! screens there as PNG (that is how `docs/*.png` were made).

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use concord_testkit::{TestServer, WAIT};
use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use serde_json::{Value, json};

#[tokio::test]
async fn the_client_is_served_at_the_root_with_a_policy_that_lets_it_run() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();

    let page = http.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let host = server.addr.to_string();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        &format!("connect-src 'self' ws://{host} wss://{host}"),
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{part:?} missing from {csp:?}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/app/main.js">"#));
    assert!(!html.contains("<script>"), "no inline script");

    for (path, kind) in [
        ("/app/main.js", "text/javascript; charset=utf-8"),
        ("/app/app.css", "text/css; charset=utf-8"),
        ("/app/icon.svg", "image/svg+xml"),
    ] {
        let res = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], kind, "{path}");
        assert_eq!(res.headers()["cache-control"], "no-cache", "{path}");
        let etag = res.headers()["etag"].clone();
        let again = http
            .get(server.url(path))
            .header("if-none-match", etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path} revalidates");
        assert_eq!(again.headers()["etag"], etag);
        assert!(again.bytes().await.unwrap().is_empty());
    }

    let missing = http
        .get(server.url("/app/nothing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert!(body["error"].is_string());

    // The API keeps its closed policy, and a strange Host is not echoed into one.
    let api = http.get(server.url("/health")).send().await.unwrap();
    assert_eq!(api.status(), 200);
    let users = http.get(server.url("/users/@me")).send().await.unwrap();
    assert_eq!(
        users.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    let odd = http
        .get(server.url("/"))
        .header("host", "evil.example;script-src *")
        .send()
        .await
        .unwrap();
    assert_eq!(
        odd.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    server.shutdown().await;
}

/// The chromedriver process, ended when the test ends however it ends.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver on a free loopback port and waits for its "started" line.
fn start_driver() -> Driver {
    let found = |program: &str| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        found("chromedriver") && found(CHROMIUM),
        "the browser test needs `chromedriver` and `{CHROMIUM}` on PATH: install Debian's \
         packages with `apt-get install -y chromium chromium-driver` (.ci/run does)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chromedriver");
    let stdout = child.stdout.take().expect("chromedriver stdout");
    let mut lines = BufReader::new(stdout).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("started successfully"));
    // Keep draining its output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    assert!(started, "chromedriver did not start");
    Driver { child, port }
}

const CHROMIUM: &str = "chromium";

/// A new headless browser session with its own profile (its own localStorage).
async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1200,760"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a chromium session");
    client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(WAIT * 2),
            Some(WAIT * 3),
            Some(WAIT),
        ))
        .await
        .expect("timeouts");
    client
}

/// Waits until the JavaScript expression `condition` is true in the page: checked now
/// and on every DOM change, bounded by the script timeout. No sleeps.
async fn until(client: &Client, condition: &str) {
    let script = format!(
        "const done = arguments[arguments.length - 1];
         const ok = () => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }};
         if (ok()) return done(true);
         const seen = new MutationObserver(() => {{ if (ok()) {{ seen.disconnect(); done(true); }} }});
         seen.observe(document, {{ subtree: true, childList: true, characterData: true, attributes: true }});"
    );
    if let Err(err) = client.execute_async(&script, vec![]).await {
        let error = client
            .execute(
                "return document.getElementById('error').textContent",
                vec![],
            )
            .await
            .unwrap_or(Value::Null);
        panic!("waited in vain for `{condition}` ({err}); the page's error bar says {error}");
    }
}

async fn find(client: &Client, css: &str) -> Element {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
}

async fn type_into(client: &Client, css: &str, text: &str) {
    let field = find(client, css).await;
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

async fn click(client: &Client, css: &str) {
    find(client, css).await.click().await.expect("click");
}

/// The texts of the messages shown, in order.
async fn shown(client: &Client) -> Vec<String> {
    let texts = client
        .execute(
            "return [...document.querySelectorAll('#messages .content')].map(n => n.textContent)",
            vec![],
        )
        .await
        .expect("read messages");
    serde_json::from_value(texts).expect("strings")
}

const PASSWORD: &str = "correct-horse-42";

/// Opens the client and registers `name`; returns when its gateway is connected.
async fn register(client: &Client, server: &TestServer, name: &str) {
    client
        .goto(&server.url("/"))
        .await
        .expect("open the client");
    type_into(client, "#username", name).await;
    type_into(client, "#password", PASSWORD).await;
    click(client, "#login-form summary").await;
    click(client, "#register-btn").await;
    until(
        client,
        "document.getElementById('conn-state').dataset.state === 'connected'",
    )
    .await;
}

async fn screenshot(client: &Client, name: &str) {
    if let Ok(dir) = std::env::var("CONCORD_SCREENSHOTS") {
        let png = client.screenshot().await.expect("screenshot");
        std::fs::write(std::path::Path::new(&dir).join(name), png).expect("write screenshot");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_chat_in_two_browsers_and_a_restart_loses_and_repeats_nothing() {
    let driver = start_driver();
    let mut server = TestServer::start().await;
    let alice = browser(&driver).await;
    let bob = browser(&driver).await;

    alice.goto(&server.url("/")).await.expect("open");
    find(&alice, "#login-form").await;
    screenshot(&alice, "web-login.png").await;
    // A wrong password is said so, not swallowed.
    type_into(&alice, "#username", "nobody_here").await;
    type_into(&alice, "#password", "wrong-password-1").await;
    click(&alice, "#login-btn").await;
    until(
        &alice,
        "document.getElementById('error').textContent.includes('Wrong username or password')",
    )
    .await;

    register(&alice, &server, "alice").await;
    type_into(&alice, "#create-name", "Tea room").await;
    click(&alice, "#create-btn").await;
    until(
        &alice,
        "document.getElementById('channel-name').textContent === '# general'",
    )
    .await;
    click(&alice, "#invite-btn").await;
    until(
        &alice,
        "document.getElementById('invite-code').value.length === 8",
    )
    .await;
    let code = alice
        .execute(
            "return document.getElementById('invite-code').value",
            vec![],
        )
        .await
        .expect("invite code");
    let code = code.as_str().expect("a string").to_owned();

    register(&bob, &server, "bob").await;
    type_into(&bob, "#join-code", &code).await;
    click(&bob, "#join-btn").await;
    until(
        &bob,
        "document.getElementById('channel-name').textContent === '# general'",
    )
    .await;
    // Both members, both online (presence dots from the member list and PRESENCE_UPDATE).
    until(
        &bob,
        "document.querySelectorAll('#member-list .member[data-status=online]').length === 2",
    )
    .await;

    // Alice types: Bob sees her typing, then her message, live.
    type_into(&alice, "#message-input", "hello bob").await;
    until(
        &bob,
        "document.getElementById('typing').textContent === 'alice is typing…'",
    )
    .await;
    find(&alice, "#message-input")
        .await
        .send_keys("\u{E007}")
        .await
        .expect("enter");
    until(
        &bob,
        "[...document.querySelectorAll('#messages .content')].some(n => n.textContent === 'hello bob')",
    )
    .await;
    assert_eq!(
        bob.execute(
            "return document.getElementById('typing').textContent",
            vec![]
        )
        .await
        .unwrap(),
        "",
        "a message ends its author's typing"
    );
    type_into(&bob, "#message-input", "hi alice\u{E007}").await;
    until(
        &alice,
        "[...document.querySelectorAll('#messages .content')].some(n => n.textContent === 'hi alice')",
    )
    .await;
    screenshot(&bob, "web-chat.png").await;

    // Record what Bob's page shows and receives from here on, and hold its reconnect
    // until the test has posted a message: that message is then surely sent while Bob's
    // session is detached, and must come by RESUME's replay.
    bob.execute(
        "const g = window.concord.gateway;
         window.seenStates = [];
         new MutationObserver(() => seenStates.push(document.getElementById('conn-state').textContent))
           .observe(document.getElementById('conn-state'), { childList: true, characterData: true, subtree: true });
         window.seenEvents = [];
         g.addEventListener('dispatch', (e) => seenEvents.push(e.detail.t));
         const open = g.open.bind(g);
         g.open = () => {
           window.reconnect = () => { g.open = open; open(); };
           document.body.dataset.held = 'yes';
         };",
        vec![],
    )
    .await
    .expect("instrument");

    server = server.restart().await;
    until(&bob, "document.body.dataset.held === 'yes'").await;
    assert_eq!(
        bob.execute(
            "return document.getElementById('conn-state').textContent",
            vec![]
        )
        .await
        .unwrap(),
        "reconnecting…"
    );
    let poster = server
        .api()
        .post(
            "/auth/login",
            &json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(poster.status, 200, "{}", poster.body);
    let poster = server
        .api()
        .bearer(poster.body["access_token"].as_str().unwrap());
    let channel = bob
        .execute("return window.concord.chat.channel", vec![])
        .await
        .unwrap();
    let channel = channel.as_str().unwrap();
    let res = poster
        .post(
            &format!("/channels/{channel}/messages"),
            &json!({"content": "sent while you were away"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);

    bob.execute("window.reconnect()", vec![])
        .await
        .expect("reconnect");
    until(&bob, "window.seenEvents.includes('RESUMED')").await;
    until(
        &bob,
        "[...document.querySelectorAll('#messages .content')].some(n => n.textContent === 'sent while you were away')",
    )
    .await;
    // A later live message: once it shows, anything sent before it has arrived too.
    let res = poster
        .post(
            &format!("/channels/{channel}/messages"),
            &json!({"content": "and now live"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    until(
        &bob,
        "[...document.querySelectorAll('#messages .content')].some(n => n.textContent === 'and now live')",
    )
    .await;
    assert_eq!(
        shown(&bob).await,
        [
            "hello bob",
            "hi alice",
            "sent while you were away",
            "and now live"
        ],
        "every message exactly once, in order"
    );
    let events = bob
        .execute("return window.seenEvents", vec![])
        .await
        .unwrap();
    let events: Vec<String> = serde_json::from_value(events).unwrap();
    assert!(
        !events.iter().any(|t| t == "READY"),
        "resumed, not identified afresh: {events:?}"
    );
    let states = bob
        .execute("return window.seenStates", vec![])
        .await
        .unwrap();
    assert!(
        states
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "reconnecting…"),
        "{states}"
    );
    assert_eq!(
        bob.execute(
            "return document.getElementById('conn-state').textContent",
            vec![]
        )
        .await
        .unwrap(),
        "connected"
    );

    alice.close().await.expect("close alice");
    bob.close().await.expect("close bob");
    server.shutdown().await;
    drop(driver);
}

/// Evaluates `expression` in the page and returns its value.
async fn eval(client: &Client, expression: &str) -> Value {
    client
        .execute(&format!("return {expression};"), vec![])
        .await
        .unwrap_or_else(|e| panic!("evaluate {expression}: {e}"))
}

const LOGIN_SHOWN: &str = "!document.getElementById('login').hidden \
     && document.getElementById('chat').hidden";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_disables_a_user_whose_open_page_is_signed_out_and_others_never_see_the_admin_page()
 {
    let driver = start_driver();
    let server = TestServer::start().await;
    let alice = browser(&driver).await;
    let bob = browser(&driver).await;

    // The first account is the instance admin; the second is not.
    register(&alice, &server, "alice").await;
    register(&bob, &server, "bob").await;
    until(&alice, "!document.getElementById('admin-btn').hidden").await;
    assert_eq!(
        eval(
            &bob,
            "[document.getElementById('admin-btn').hidden, document.getElementById('admin').hidden]"
        )
        .await,
        json!([true, true]),
        "no way into the admin page for a non-admin"
    );
    // Forcing the page open from the console gets the server's refusal and nothing else.
    bob.execute("window.concord.admin.open().catch(() => {})", vec![])
        .await
        .expect("force the admin page");
    until(
        &bob,
        "document.getElementById('error').textContent === 'Admin access required' \
         && document.getElementById('admin').hidden",
    )
    .await;
    assert_eq!(
        eval(
            &bob,
            "document.querySelectorAll('#admin-users tr, #admin-servers tr, #admin-counters .counter').length"
        )
        .await,
        json!(0),
        "a non-admin is shown no admin data"
    );

    // Alice's admin page: live counters, read again every few seconds.
    type_into(&alice, "#create-name", "Lobby").await;
    click(&alice, "#create-btn").await;
    until(
        &alice,
        "document.getElementById('channel-name').textContent === '# general'",
    )
    .await;
    click(&alice, "#admin-btn").await;
    until(
        &alice,
        "!document.getElementById('admin').hidden && document.getElementById('room').hidden",
    )
    .await;
    until(
        &alice,
        "Number(document.querySelector('#admin-counters [data-key=connections] dd').textContent) === 2 \
         && Number(document.querySelector('#admin-counters [data-key=sessions] dd').textContent) === 2 \
         && document.querySelector('#admin-counters [data-key=servers] dd').textContent === '1'",
    )
    .await;
    // A second reading gives the delivery rate (a short end-to-end wait: one poll).
    until(
        &alice,
        "/^[0-9.,]+$/.test(document.querySelector('#admin-counters [data-key=rate] dd').textContent)",
    )
    .await;
    until(
        &alice,
        "[...document.querySelectorAll('#admin-servers tr td:first-child')].map(n => n.textContent).join() === 'Lobby'",
    )
    .await;
    until(
        &alice,
        "document.querySelectorAll('#admin-users tr[data-username]').length === 2",
    )
    .await;

    // Search, then disable Bob: his open page is signed out at once, with a message.
    type_into(&alice, "#users-search", "bo").await;
    click(&alice, "#users-search-form button[type=submit]").await;
    until(
        &alice,
        "[...document.querySelectorAll('#admin-users tr[data-username]')].map(r => r.dataset.username).join() === 'bob'",
    )
    .await;
    click(&alice, "#admin-users tr[data-username=bob] .disable-btn").await;
    until(
        &alice,
        "document.querySelector('#admin-users tr[data-username=bob]').dataset.disabled === 'true'",
    )
    .await;
    until(&bob, LOGIN_SHOWN).await;
    until(
        &bob,
        "document.getElementById('error').textContent.startsWith('You are signed out')",
    )
    .await;
    assert_eq!(
        eval(&bob, "localStorage.getItem('concord.refresh_token')").await,
        Value::Null,
        "the ended login is forgotten, not retried"
    );
    let login = server
        .api()
        .post(
            "/auth/login",
            &json!({"username": "bob", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, 403, "{}", login.body);

    // Make admin, the registration mode switch, and back to the full list.
    click(&alice, "#admin-users tr[data-username=bob] .promote-btn").await;
    until(
        &alice,
        "document.querySelector('#admin-users tr[data-username=bob]').dataset.admin === 'true'",
    )
    .await;
    click(&alice, "#registration-mode option[value=invite_only]").await;
    until(
        &alice,
        "document.getElementById('registration-mode').dataset.mode === 'invite_only'",
    )
    .await;
    let mode = server.api().get("/instance/registration-mode").await;
    assert_eq!(
        mode.body["registration_mode"], "invite_only",
        "{}",
        mode.body
    );
    type_into(&alice, "#users-search", "").await;
    click(&alice, "#users-search-form button[type=submit]").await;
    until(
        &alice,
        "document.querySelectorAll('#admin-users tr[data-username]').length === 2",
    )
    .await;
    // Her own row offers nothing that would lock her out.
    assert_eq!(
        eval(
            &alice,
            "[...document.querySelectorAll('#admin-users tr[data-username=alice] button')].every(b => b.disabled)"
        )
        .await,
        json!(true)
    );
    screenshot(&alice, "web-admin.png").await;

    alice.close().await.expect("close alice");
    bob.close().await.expect("close bob");
    server.shutdown().await;
    drop(driver);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_refreshed_once_then_signed_out_instead_of_looping() {
    let driver = start_driver();
    let server = TestServer::start().await;
    let carol = browser(&driver).await;
    register(&carol, &server, "carol").await;

    // From here the page's token is refused and a refresh "succeeds" without fixing
    // it, as when the server no longer accepts what the refresh hands out. Count the
    // connections opened and the refreshes tried, then drop the connection.
    carol
        .execute(
            "const g = window.concord.gateway;
             const s = window.concord.session;
             window.opens = 0;
             window.refreshes = 0;
             const open = g.open.bind(g);
             g.open = () => { window.opens += 1; open(); };
             s.refresh = async () => { window.refreshes += 1; };
             s.access = 'not-a-token';
             g.ws.close(4000);",
            vec![],
        )
        .await
        .expect("instrument");
    until(&carol, LOGIN_SHOWN).await;
    assert!(
        eval(&carol, "document.getElementById('error').textContent")
            .await
            .as_str()
            .is_some_and(|t| t.contains("refused")),
        "the sign-out says why"
    );
    assert_eq!(
        eval(
            &carol,
            "[window.opens, window.refreshes, window.concord.gateway.stopped, localStorage.getItem('concord.refresh_token')]"
        )
        .await,
        json!([2, 1, true, null]),
        "one reconnect, refused (4004); one refresh and one more try, refused again; then stop"
    );

    carol.close().await.expect("close carol");
    server.shutdown().await;
    drop(driver);
}
