//! The listening socket keeps a reconnect storm's connects queued instead of dropping
//! them: with the common backlog of 128, SYNs past the 129th are dropped by the kernel
//! and each of those clients hangs in retransmission (1 s, then 3 s, 7 s, …).

use std::{net::SocketAddr, time::Duration};

use concord_server::Config;
use futures_util::future::try_join_all;
use tokio::net::TcpStream;

/// The kernel's cap on any listener's backlog.
fn somaxconn() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[tokio::test]
async fn connects_beyond_128_complete_their_handshakes_while_nothing_accepts() {
    const BURST: usize = 300;
    let backlog = Config::default().listen_backlog;
    assert!(
        backlog as usize > BURST,
        "the default backlog holds the burst"
    );
    if let Some(cap) = somaxconn()
        && cap <= BURST
    {
        eprintln!("net.core.somaxconn is {cap}: the kernel caps every backlog below {BURST}");
        return;
    }
    let listener = concord_server::bind(SocketAddr::from(([127, 0, 0, 1], 0)), backlog)
        .expect("bind on an ephemeral port");
    let addr = listener.local_addr().unwrap();

    // Nothing accepts yet, so every connection must wait in the queue. A handshake
    // completes in microseconds on loopback; the bound only stops a dropped SYN from
    // hanging the test for the two minutes of retransmissions.
    let clients = tokio::time::timeout(
        Duration::from_secs(20),
        try_join_all((0..BURST).map(|_| TcpStream::connect(addr))),
    )
    .await
    .expect("every handshake completes while nothing accepts")
    .expect("every connect succeeds");

    // They were all queued: each is accepted now, from its own client's address.
    let mut accepted = Vec::with_capacity(BURST);
    for _ in 0..BURST {
        let (_, peer) = listener.accept().await.expect("accept a queued connection");
        accepted.push(peer);
    }
    accepted.sort();
    let mut expected: Vec<SocketAddr> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
    expected.sort();
    assert_eq!(accepted, expected);
}

#[tokio::test]
async fn an_address_in_use_is_an_error_not_a_second_listener() {
    let first = concord_server::bind(SocketAddr::from(([127, 0, 0, 1], 0)), 16).unwrap();
    let addr = first.local_addr().unwrap();
    let err = concord_server::bind(addr, 16).expect_err("the port is taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

/// A graceful shutdown closes the listening socket before it drains the gateway: a
/// client told to go away that reconnects at once must be refused (and retry against
/// the next process), not let in to a server about to exit, which would take its saved
/// session with it.
#[tokio::test]
async fn shutdown_refuses_new_connections_while_it_drains_the_gateway() {
    let mut server = concord_testkit::TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    // Bob never reads his socket, so he never answers the close: the drain waits on him.
    let (_bob_gateway, _) = server.connect(&bob.ws_query()).await;
    let (mut alice_gateway, _) = server.connect(&alice.ws_query()).await;
    let addr = server
        .url("/")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();

    // Positive control: while the server runs, a new connection is accepted.
    let (control, _) = server.connect(&alice.ws_query()).await;
    drop(control);

    server.begin_shutdown();
    assert_eq!(
        alice_gateway.closed().await,
        concord_testkit::Closed::Code(1001)
    );
    // The drain has begun (Alice was closed by it) and is still waiting for Bob.
    match server.connect_raw(&alice.ws_query()).await {
        Err(_) => {}
        Ok(_) => panic!("a connection was accepted by a server that is shutting down ({addr})"),
    }
}
