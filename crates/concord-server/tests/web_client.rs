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
    browser_with(driver, &[]).await
}

/// [`browser`] with more Chromium switches.
async fn browser_with(driver: &Driver, extra: &[&str]) -> Client {
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1200,760",
    ];
    args.extend_from_slice(extra);
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), json!({ "args": args }));
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

// ---- voice in "gateway audio" mode (issue 20, docs/protocol-v2.md §15) ----

/// Chromium switches for a page that captures and plays audio unattended: a fake
/// microphone (a beep), the permission prompt answered yes, and sound without a click.
const MEDIA_SWITCHES: &[&str] = &[
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
];

/// Polls the JavaScript expression `condition` until it is true: for state outside the
/// DOM (the audio counters), which the DOM-observing [`until`] does not see change. A
/// guard against hangs only, generous for a loaded machine.
async fn until_polled(client: &Client, condition: &str) {
    let deadline = tokio::time::Instant::now() + WAIT * 6;
    loop {
        let value = client
            .execute(
                &format!("try {{ return !!({condition}); }} catch (e) {{ return false; }}"),
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("evaluate {condition}: {e}"));
        if value == Value::Bool(true) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let stats = eval(client, "JSON.stringify(window.concordAudioStats)").await;
            let error = eval(client, "document.getElementById('error').textContent").await;
            panic!("waited in vain for `{condition}`; audio stats {stats}; error bar {error}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// What a raw v2 socket reads: a JSON frame (text) or an audio chunk (binary).
enum Frame {
    Json(Value),
    Chunk(Vec<u8>),
}

/// A bot on a raw v2 WebSocket, which reads audio chunks as well as events.
struct BotSocket {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// The bot's user id (from READY).
    user_id: String,
    last_beat: tokio::time::Instant,
}

impl BotSocket {
    /// Connects to `server` with `?v=2`, IDENTIFYs with `bot_token` and reads READY.
    async fn connect(server: &TestServer, bot_token: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?v=2", server.addr))
            .await
            .expect("bot socket");
        let mut bot = Self {
            ws,
            user_id: String::new(),
            last_beat: tokio::time::Instant::now(),
        };
        let Frame::Json(hello) = bot.next().await else {
            panic!("a chunk before HELLO")
        };
        assert_eq!(hello["op"], "HELLO", "{hello}");
        bot.send(json!({"op": "IDENTIFY", "d": {"bot_token": bot_token}}))
            .await;
        let ready = bot.event("READY").await;
        bot.user_id = ready["user"]["id"].as_str().expect("READY user").to_owned();
        bot
    }

    async fn send(&mut self, value: Value) {
        use futures_util::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::text(
                value.to_string(),
            ))
            .await
            .expect("bot send");
    }

    async fn send_binary(&mut self, bytes: Vec<u8>) {
        use futures_util::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::binary(bytes))
            .await
            .expect("bot send chunk");
    }

    /// The next frame; heartbeats (sent now and then to keep the session) and their
    /// acks are handled here.
    async fn next(&mut self) -> Frame {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            if self.last_beat.elapsed() > WAIT {
                self.last_beat = tokio::time::Instant::now();
                self.send(json!({"op": "HEARTBEAT"})).await;
            }
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("the bot waited in vain for a frame")
                .expect("the bot's socket ended")
                .expect("the bot's socket failed");
            match message {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
                    if frame["op"] == "HEARTBEAT_ACK" {
                        continue;
                    }
                    assert_ne!(frame["op"], "ERROR", "the bot was refused: {frame}");
                    return Frame::Json(frame);
                }
                Message::Binary(bytes) => return Frame::Chunk(bytes.to_vec()),
                Message::Close(close) => panic!("the bot's socket closed: {close:?}"),
                _ => {}
            }
        }
    }

    /// The next DISPATCH of `t`, skipping other events and every audio chunk.
    async fn event(&mut self, t: &str) -> Value {
        loop {
            if let Frame::Json(frame) = self.next().await
                && frame["t"] == t
            {
                return frame["d"].clone();
            }
        }
    }
}

/// A relayed chunk (§15.3): format code, sequence number, speaker (hyphenated), payload length.
fn relayed(chunk: &[u8]) -> (u8, u32, String, usize) {
    assert!(chunk.len() > 28, "a relayed chunk of {} bytes", chunk.len());
    assert_eq!(chunk[..2], [0xA7, 0x02], "relayed chunk header");
    let seq = u32::from_be_bytes(chunk[4..8].try_into().unwrap());
    let hex: String = chunk[12..28].iter().map(|b| format!("{b:02x}")).collect();
    let speaker = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    (chunk[2], seq, speaker, chunk.len() - 28)
}

/// One client chunk of 20 ms of a 440 Hz tone at 48 kHz: header and 960 samples.
fn tone_chunk(seq: u32) -> Vec<u8> {
    let mut frame = vec![0xA7, 0x01, 0, 0];
    frame.extend_from_slice(&seq.to_be_bytes());
    frame.extend_from_slice(&(seq * 20).to_be_bytes());
    for i in 0..960u32 {
        let t = f64::from(seq * 960 + i) / 48_000.0;
        // A quarter of full scale: the product stays well inside i16.
        #[allow(clippy::cast_possible_truncation)]
        let sample = ((t * 440.0 * std::f64::consts::TAU).sin() * 8_000.0) as i16;
        frame.extend_from_slice(&sample.to_le_bytes());
    }
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_in_the_web_client_and_a_bot_hear_each_other_over_the_gateway() {
    let driver = start_driver();
    let server = TestServer::start().await;
    let owner = server.user("olive").await;
    let guild = owner.create_server("Studio").await;
    owner.create_channel(&guild, "general", "text").await;
    let lounge = owner.create_channel(&guild, "Lounge", "voice").await;
    let invite = owner
        .api
        .post(&format!("/servers/{guild}/invites"), &json!({}))
        .await;
    assert_eq!(invite.status, 201, "{}", invite.body);
    let code = invite.body["code"].as_str().expect("code").to_owned();

    // The bot: in the server and the voice channel, subscribed to every speaker.
    let created = owner.api.post("/bots", &json!({"name": "Echo"})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let bot_token = created.body["token"].as_str().expect("token").to_owned();
    let bot_api = server.api().bot(&bot_token);
    for path in [
        format!("/servers/{guild}/join"),
        format!("/channels/{lounge}/voice"),
    ] {
        let res = bot_api.post_empty(&path).await;
        assert_eq!(res.status, 201, "{path}: {}", res.body);
    }
    let mut bot = BotSocket::connect(&server, &bot_token).await;
    bot.send(json!({"op": "MEDIA_SUBSCRIBE", "d": null})).await;
    let bot_id = bot.user_id.clone();

    // A person signs in, joins the server, sees the bot in the voice channel and joins it.
    let page = browser_with(&driver, MEDIA_SWITCHES).await;
    register(&page, &server, "dana").await;
    type_into(&page, "#join-code", &code).await;
    click(&page, "#join-btn").await;
    until(
        &page,
        "document.getElementById('channel-name').textContent === '# general'",
    )
    .await;
    let bot_in_roster =
        format!("document.querySelector('#channel-list .voice-member[data-id=\"{bot_id}\"]')");
    until(&page, &format!("{bot_in_roster} !== null")).await;
    let dana = eval(&page, "window.concord.session.user.id").await;
    let dana = dana.as_str().expect("the page's user id").to_owned();
    // Clicked from the page: the channel list is redrawn as events come, and a button
    // found a moment before may be stale by the time a WebDriver click lands.
    page.execute(
        &format!("document.querySelector('#channel-list button[data-id=\"{lounge}\"]').click()"),
        vec![],
    )
    .await
    .expect("join the voice channel");
    until(
        &page,
        &format!(
            "!document.getElementById('voice-panel').hidden \
             && document.querySelector('#channel-list .voice-member[data-id=\"{dana}\"]') !== null"
        ),
    )
    .await;
    // The bot hears her: MEDIA_STARTED (48 kHz PCM), then her chunks, in order.
    loop {
        match bot.next().await {
            Frame::Chunk(chunk) => panic!("a chunk before MEDIA_STARTED: {:?}", relayed(&chunk)),
            Frame::Json(frame) if frame["t"] == "MEDIA_STARTED" => {
                assert_eq!(
                    frame["d"],
                    json!({"user_id": dana, "channel_id": lounge, "format": "pcm_s16le_48k"})
                );
                break;
            }
            Frame::Json(_) => {}
        }
    }
    let mut heard = 0u32;
    let mut last_seq = None;
    let mut check = |chunk: &[u8], heard: &mut u32| {
        let (format, seq, speaker, payload) = relayed(chunk);
        assert_eq!(
            (format, speaker.as_str(), payload),
            (2, dana.as_str(), 1920),
            "one 20 ms chunk of 48 kHz PCM from the page's user"
        );
        assert!(
            last_seq.is_none_or(|last| seq > last),
            "sequence {seq} after {last_seq:?}"
        );
        last_seq = Some(seq);
        *heard += 1;
    };
    while heard < 25 {
        if let Frame::Chunk(chunk) = bot.next().await {
            check(&chunk, &mut heard);
        }
    }

    // The page marks speakers as MEDIA_STARTED comes: watch for the bot's mark.
    page.execute(
        &format!(
            "window.sawBotSpeaking = false;
             const look = () => {{
               if (document.querySelector('#channel-list .voice-member[data-id=\"{bot_id}\"][data-speaking=true]'))
                 window.sawBotSpeaking = true;
             }};
             new MutationObserver(look).observe(document.getElementById('channel-list'),
               {{ subtree: true, childList: true, attributes: true }});"
        ),
        vec![],
    )
    .await
    .expect("watch the roster");

    // The bot speaks: one second pushed at once, paced out by the server.
    bot.send(json!({"op": "MEDIA_START", "d": {"format": "pcm_s16le_48k"}}))
        .await;
    loop {
        match bot.next().await {
            Frame::Chunk(chunk) => check(&chunk, &mut heard),
            Frame::Json(frame) if frame["t"] == "MEDIA_STARTED" => {
                assert_eq!(frame["d"]["user_id"], bot_id.as_str(), "{frame}");
                break;
            }
            Frame::Json(_) => {}
        }
    }
    for seq in 0..50 {
        bot.send_binary(tone_chunk(seq)).await;
    }
    bot.send(json!({"op": "MEDIA_STOP"})).await;
    loop {
        match bot.next().await {
            Frame::Chunk(chunk) => check(&chunk, &mut heard),
            Frame::Json(frame) if frame["t"] == "MEDIA_ENDED" => {
                assert_eq!(
                    frame["d"],
                    json!({"user_id": bot_id, "channel_id": lounge, "reason": "stopped"})
                );
                break;
            }
            Frame::Json(_) => {}
        }
    }
    until_polled(
        &page,
        &format!(
            "window.concordAudioStats.chunksReceived >= 50 \
             && window.concordAudioStats.events.includes('MEDIA_ENDED {bot_id} stopped')"
        ),
    )
    .await;
    assert_eq!(
        eval(
            &page,
            &format!(
                "[window.concordAudioStats.chunksReceived, window.concordAudioStats.received['{bot_id}'],
                  window.concordAudioStats.outOfOrder, window.concordAudioStats.speakers,
                  window.concordAudioStats.events.filter(e => e.includes('{bot_id}')), window.sawBotSpeaking]"
            )
        )
        .await,
        json!([
            50,
            50,
            0,
            [],
            [
                format!("MEDIA_STARTED {bot_id}"),
                format!("MEDIA_ENDED {bot_id} stopped")
            ],
            true
        ]),
        "the bot's second, all of it, in order, between its start and its end"
    );
    // And it reached the speakers: the playback worklet played the bot's chunks through
    // (some at least: its jitter buffer may drop a few on a loaded machine).
    until_polled(&page, "window.concordAudioStats.chunksPlayed > 0").await;
    assert_eq!(
        eval(&page, &format!("{bot_in_roster}.dataset.speaking")).await,
        "false",
        "the mark goes when the stream ends"
    );

    // Mute: the page's stream ends (stopped), after every chunk it sent.
    click(&page, "#voice-mute").await;
    loop {
        match bot.next().await {
            Frame::Chunk(chunk) => check(&chunk, &mut heard),
            Frame::Json(frame) if frame["t"] == "MEDIA_ENDED" => {
                assert_eq!(
                    frame["d"],
                    json!({"user_id": dana, "channel_id": lounge, "reason": "stopped"})
                );
                break;
            }
            Frame::Json(_) => {}
        }
    }
    let sent = eval(
        &page,
        "[window.concordAudioStats.sending, window.concordAudioStats.chunksSent]",
    )
    .await;
    assert_eq!(
        sent,
        json!([false, heard]),
        "every chunk the page sent reached the bot, once"
    );

    // Leave: the bot sees her go, and no chunk of hers after her stream's end.
    click(&page, "#voice-leave").await;
    loop {
        match bot.next().await {
            Frame::Chunk(chunk) => panic!("a chunk after the end: {:?}", relayed(&chunk)),
            Frame::Json(frame)
                if frame["t"] == "VOICE_STATE_UPDATE" && frame["d"]["channel_id"].is_null() =>
            {
                assert_eq!(frame["d"]["user_id"], dana.as_str(), "{frame}");
                break;
            }
            Frame::Json(_) => {}
        }
    }
    until(&page, "document.getElementById('voice-panel').hidden").await;

    page.close().await.expect("close the page");
    server.shutdown().await;
    drop(driver);
}
