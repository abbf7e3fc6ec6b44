//! The SDK over TLS: a real server behind a TLS-terminating relay (as behind nginx in
//! production), reached with `wss://` and `https://`. The relay's certificate is
//! signed by a test CA, trusted only when the application names it; the default
//! Mozilla roots refuse it (the negative control).

use std::{net::SocketAddr, sync::Arc};

use concord_client::{
    Event, Gateway, GatewayConfig, StaticToken, Tls,
    raw::{ConnectOptions, Connection},
    rest::RestClient,
};
use concord_testkit::{TestServer, WAIT};
use futures_util::StreamExt;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::{net::TcpListener, task::JoinHandle, time::timeout};
use tokio_rustls::TlsAcceptor;

const CA: &[u8] = include_bytes!("fixtures/ca.pem");
const CERT: &[u8] = include_bytes!("fixtures/localhost.pem");
const KEY: &[u8] = include_bytes!("fixtures/localhost.key");

/// Accepts TLS on loopback and relays the plain bytes to the server.
struct TlsRelay {
    addr: SocketAddr,
    _accept: JoinHandle<()>,
}

impl TlsRelay {
    async fn start(server: SocketAddr) -> Self {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(CERT)
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        // Every loopback address, so that 127.0.0.2 (not in the certificate) reaches
        // it too; the SDK dials 127.0.0.1 through "localhost".
        let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], listener.local_addr().unwrap().port()));
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here.
                    let Ok(mut client) = acceptor.accept(client).await else {
                        return;
                    };
                    let mut upstream = tokio::net::TcpStream::connect(server).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        Self {
            addr,
            _accept: accept,
        }
    }
}

fn test_ca() -> Tls {
    Tls::with_roots_pem(CA).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_and_rest_work_over_tls_with_a_trusted_ca() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let relay = TlsRelay::start(server.addr).await;
    let port = relay.addr.port();

    // REST over https: the caller's own profile.
    let rest = RestClient::with_tls(&format!("https://localhost:{port}"), &test_ca())
        .unwrap()
        .with_bearer(&alice.token);
    let me = rest.me().await.unwrap();
    assert_eq!(me.username, "alice");

    // The gateway over wss: READY arrives.
    let gateway = Gateway::new(
        GatewayConfig::new(
            format!("wss://localhost:{port}/ws"),
            StaticToken::token(&alice.token),
        )
        .with_tls(test_ca()),
    );
    let mut events = gateway.events();
    gateway.connect().await.unwrap();
    let ready = timeout(WAIT, async {
        loop {
            if let Event::Ready { .. } = events.next().await.expect("stream open") {
                break;
            }
        }
    })
    .await;
    assert!(ready.is_ok(), "READY over wss");
    gateway.disconnect().await;

    // The low-level connection too: HELLO is the first frame.
    let mut raw = Connection::connect(
        &format!("wss://localhost:{port}/ws?v=2"),
        &ConnectOptions::new().with_tls(test_ca()),
    )
    .await
    .unwrap();
    let hello = timeout(WAIT, raw.next_text()).await.unwrap().unwrap();
    assert!(hello.contains("\"HELLO\""), "{hello}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_roots_refuse_a_certificate_they_do_not_know() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let relay = TlsRelay::start(server.addr).await;
    let port = relay.addr.port();

    let refused = Connection::connect(
        &format!("wss://localhost:{port}/ws?v=2"),
        &ConnectOptions::new(),
    )
    .await;
    let err = refused.expect_err("the test CA is not a Mozilla root");
    assert!(err.to_string().contains("certificate"), "{err}");
    let rest = RestClient::new(&format!("https://localhost:{port}")).with_bearer(&alice.token);
    assert!(rest.me().await.is_err());

    // A certificate for another name is refused even with the CA trusted.
    let misnamed = Connection::connect(
        &format!("wss://127.0.0.2:{port}/ws?v=2"),
        &ConnectOptions::new().with_tls(test_ca()),
    )
    .await;
    let err = misnamed.expect_err("the certificate names localhost and 127.0.0.1 only");
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[test]
fn pem_text_without_a_certificate_is_refused() {
    assert!(Tls::with_roots_pem(b"not pem").is_err());
    assert!(Tls::with_roots_pem(KEY).is_err());
    assert!(Tls::with_roots_pem(CA).is_ok());
}
