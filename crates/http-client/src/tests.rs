use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use redline_net_testkit::{ClosedPort, HttpProxy, ProxiedRequest};
use redline_pipeline::config::Secret;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;

/// What a test server saw of one request.
struct Seen {
    headers: HeaderMap,
    body: Bytes,
}

/// A loopback server answering every request with `reply`, plain or over `tls`.
struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn server(reply: fn() -> Response<Full<Bytes>>, tls: Option<TlsAcceptor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (count, record) = (connections.clone(), seen.clone());
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let (record, tls) = (record.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    None => serve(tcp, record, reply).await,
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            serve(stream, record, reply).await;
                        }
                    }
                }
            });
        }
    });
    Server {
        addr,
        connections,
        seen,
        task,
    }
}

async fn serve<I>(io: I, record: Arc<Mutex<Vec<Seen>>>, reply: fn() -> Response<Full<Bytes>>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let record = record.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            record.lock().expect("lock").push(Seen {
                headers: parts.headers,
                body,
            });
            Ok::<_, Infallible>(reply())
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

fn ok() -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::new()))
}

fn url(scheme: &str, host: &str, addr: SocketAddr) -> Uri {
    format!("{scheme}://{host}:{}/v1/write", addr.port())
        .parse()
        .expect("url")
}

fn plain(options: ClientOptions) -> HttpClient {
    HttpClient::new(&ClientTlsConfig::default(), options).expect("client")
}

#[tokio::test]
async fn a_post_carries_the_user_agent_headers_and_body_and_its_answer_is_read() {
    let s = server(
        || {
            let mut r = Response::new(Full::new(Bytes::from_static(b"  partial  \n")));
            *r.status_mut() = StatusCode::CREATED;
            r.headers_mut()
                .insert("x-answer", HeaderValue::from_static("yes"));
            r
        },
        None,
    )
    .await;
    let client = plain(ClientOptions {
        user_agent: HeaderValue::from_static("Redline/test"),
        ..ClientOptions::default()
    });
    let mut headers = HeaderMap::new();
    headers.insert("x-tenant", HeaderValue::from_static("team-a"));
    let request = client.post(
        &url("http", "127.0.0.1", s.addr),
        &headers,
        Full::new(Bytes::from_static(b"payload")),
    );
    let answer = client.send(request, None).await.expect("answer");
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.headers["x-answer"], "yes");
    assert_eq!(answer.text(), "partial");

    let seen = s.seen.lock().expect("lock");
    assert_eq!(seen[0].body, Bytes::from_static(b"payload"));
    assert_eq!(seen[0].headers["user-agent"], "Redline/test");
    assert_eq!(seen[0].headers["x-tenant"], "team-a");
}

#[tokio::test]
async fn the_callers_headers_win_over_the_user_agent() {
    let client = plain(ClientOptions::default());
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_static("mine"));
    let request = client.post(
        &"http://localhost/".parse().expect("url"),
        &headers,
        Full::default(),
    );
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.headers()[USER_AGENT], "mine");
    let default = client.post(
        &"http://localhost/".parse().expect("url"),
        &HeaderMap::new(),
        Full::default(),
    );
    let ua = default.headers()[USER_AGENT].to_str().expect("ascii");
    assert!(ua.starts_with("redline/"), "{ua}");
}

#[tokio::test]
async fn a_long_answer_is_cut_at_the_limit() {
    let s = server(
        || Response::new(Full::new(Bytes::from(vec![b'x'; 100_000]))),
        None,
    )
    .await;
    let client = plain(ClientOptions {
        max_response_bytes: 1000,
        ..ClientOptions::default()
    });
    let request = client.post(
        &url("http", "127.0.0.1", s.addr),
        &HeaderMap::new(),
        Full::default(),
    );
    let answer = client.send(request, None).await.expect("answer");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body.len(), 1000);
}

#[tokio::test]
async fn a_silent_server_is_a_timeout() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            open.push(tcp);
        }
    });
    let client = plain(ClientOptions::default());
    let request = client.post(
        &url("http", "127.0.0.1", addr),
        &HeaderMap::new(),
        Full::default(),
    );
    let t = Duration::from_millis(200);
    assert_eq!(
        client.send(request, Some(t)).await.expect_err("timeout"),
        SendError::Timeout(t)
    );
    hold.abort();
}

#[tokio::test]
async fn a_refused_connection_is_a_request_error_with_its_cause() {
    let down = ClosedPort::reserve();
    let client = plain(ClientOptions::default());
    let request = client.post(
        &url("http", "127.0.0.1", down.addr()),
        &HeaderMap::new(),
        Full::default(),
    );
    match client.send(request, Some(Duration::from_secs(5))).await {
        // The cause, not only hyper's "client error (Connect)".
        Err(SendError::Request(message)) => assert!(message.contains(": "), "{message}"),
        other => panic!("expected a request error, got {other:?}"),
    }
}

#[tokio::test]
async fn connections_are_reused_unless_keep_alive_is_off() {
    for (keep_alive, expected) in [(true, 1), (false, 3)] {
        let s = server(ok, None).await;
        let client = plain(ClientOptions {
            reuse: ConnectionReuse {
                keep_alive,
                ..ConnectionReuse::default()
            },
            ..ClientOptions::default()
        });
        for _ in 0..3 {
            let request = client.post(
                &url("http", "127.0.0.1", s.addr),
                &HeaderMap::new(),
                Full::default(),
            );
            client.send(request, None).await.expect("answer");
        }
        assert_eq!(
            s.connections.load(Ordering::SeqCst),
            expected,
            "keep_alive: {keep_alive}"
        );
    }
}

/// A CA made for the test and a TLS acceptor with a certificate it signed for `name`.
fn pki(name: &str) -> (String, TlsAcceptor) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec![name.to_owned()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("signed");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .expect("server config");
    (ca.pem(), TlsAcceptor::from(Arc::new(config)))
}

#[tokio::test]
async fn https_trusts_the_ca_given_and_checks_the_overridden_name() {
    let (ca, acceptor) = pki("collector.internal");
    let s = server(ok, Some(acceptor)).await;
    let https = |server_name_override: Option<&str>| {
        let tls = ClientTlsConfig {
            ca_pem: Some(Secret::new(ca.clone())),
            server_name_override: server_name_override.map(str::to_owned),
            ..ClientTlsConfig::default()
        };
        let options = ClientOptions {
            https: true,
            ..ClientOptions::default()
        };
        HttpClient::<Full<Bytes>>::new(&tls, options).expect("client")
    };
    let to = url("https", "127.0.0.1", s.addr);

    let client = https(Some("collector.internal"));
    let request = client.post(&to, &HeaderMap::new(), Full::default());
    let answer = client.send(request, Some(Duration::from_secs(5))).await;
    assert_eq!(answer.expect("answer").status, StatusCode::OK);

    let client = https(None);
    let request = client.post(&to, &HeaderMap::new(), Full::default());
    match client.send(request, Some(Duration::from_secs(5))).await {
        Err(SendError::Request(message)) => {
            assert!(message.contains("certificate"), "{message}")
        }
        other => panic!("127.0.0.1 is not in the certificate, yet: {other:?}"),
    }
    assert_eq!(s.seen.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn insecure_skip_verify_takes_a_certificate_from_an_unknown_ca_for_another_name() {
    let (_ca, acceptor) = pki("collector.internal");
    let s = server(ok, Some(acceptor)).await;
    let tls = ClientTlsConfig {
        insecure_skip_verify: true,
        ..ClientTlsConfig::default()
    };
    let options = ClientOptions {
        https: true,
        ..ClientOptions::default()
    };
    let client = HttpClient::<Full<Bytes>>::new(&tls, options).expect("client");
    let request = client.post(
        &url("https", "127.0.0.1", s.addr),
        &HeaderMap::new(),
        Full::default(),
    );
    let answer = client.send(request, Some(Duration::from_secs(5))).await;
    assert_eq!(answer.expect("answer").status, StatusCode::OK);
    assert_eq!(
        s.seen.lock().expect("lock").len(),
        1,
        "over TLS: the server speaks nothing else"
    );
}

#[tokio::test]
async fn through_a_proxy_plain_http_is_forwarded_and_https_tunnelled() {
    let proxy = HttpProxy::start().await;
    let options = |https| ClientOptions {
        https,
        proxy: Proxy::from_config(Some(&format!("http://otel:s3cret@{}", proxy.addr)))
            .expect("proxy"),
        ..ClientOptions::default()
    };

    let s = server(ok, None).await;
    let client = HttpClient::<Full<Bytes>>::new(&ClientTlsConfig::default(), options(false))
        .expect("client");
    let to = url("http", "127.0.0.1", s.addr);
    let request = client.post(&to, &HeaderMap::new(), Full::from("plain"));
    let answer = client.send(request, Some(Duration::from_secs(5))).await;
    assert_eq!(answer.expect("answer").status, StatusCode::OK);

    let (ca, acceptor) = pki("collector.internal");
    let tls_server = server(ok, Some(acceptor)).await;
    let tls = ClientTlsConfig {
        ca_pem: Some(Secret::new(ca)),
        server_name_override: Some("collector.internal".into()),
        ..ClientTlsConfig::default()
    };
    let client = HttpClient::<Full<Bytes>>::new(&tls, options(true)).expect("client");
    let request = client.post(
        &url("https", "127.0.0.1", tls_server.addr),
        &HeaderMap::new(),
        Full::from("secret"),
    );
    let answer = client.send(request, Some(Duration::from_secs(5))).await;
    assert_eq!(answer.expect("answer").status, StatusCode::OK);

    let auth = Some("Basic b3RlbDpzM2NyZXQ=".to_owned());
    assert_eq!(
        proxy.seen(),
        [
            ProxiedRequest {
                method: "POST".into(),
                target: to.to_string(),
                proxy_authorization: auth.clone(),
            },
            ProxiedRequest {
                method: "CONNECT".into(),
                target: tls_server.addr.to_string(),
                proxy_authorization: auth,
            },
        ]
    );
    let bodies = |s: &Server| -> Vec<Bytes> {
        s.seen
            .lock()
            .expect("lock")
            .iter()
            .map(|r| r.body.clone())
            .collect()
    };
    assert_eq!(bodies(&s), [Bytes::from("plain")]);
    assert_eq!(bodies(&tls_server), [Bytes::from("secret")]);
}

#[tokio::test]
async fn grpc_connections_are_tunnelled_whatever_the_scheme() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tower_service::Service;

    let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target = echo.local_addr().expect("addr");
    let echoing = tokio::spawn(async move {
        let (mut tcp, _) = echo.accept().await.expect("accept");
        let mut buf = [0u8; 4];
        tcp.read_exact(&mut buf).await.expect("read");
        tcp.write_all(&buf).await.expect("write");
    });
    let proxy = HttpProxy::start().await;
    let mut connector =
        GrpcConnector::new(None, Proxy::from_config(Some(&proxy.url())).expect("proxy"))
            .expect("connector");
    let stream = connector
        .call(format!("http://{target}").parse().expect("uri"))
        .await
        .expect("tunnelled");
    let mut io = TokioIo::new(stream);
    io.write_all(b"ping").await.expect("write");
    let mut back = [0u8; 4];
    io.read_exact(&mut back).await.expect("read");
    assert_eq!(&back, b"ping");
    echoing.await.expect("echo");
    assert_eq!(
        proxy.seen(),
        [ProxiedRequest {
            method: "CONNECT".into(),
            target: target.to_string(),
            proxy_authorization: None,
        }]
    );
}

#[test]
fn tls_files_are_read_only_for_https() {
    let tls = ClientTlsConfig {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..ClientTlsConfig::default()
    };
    assert!(HttpClient::<Full<Bytes>>::new(&tls, ClientOptions::default()).is_ok());
    let https = ClientOptions {
        https: true,
        ..ClientOptions::default()
    };
    let err = HttpClient::<Full<Bytes>>::new(&tls, https)
        .err()
        .expect("unreadable CA");
    assert_eq!(err.key, "ca_file");
}

#[test]
fn a_bad_server_name_override_names_its_key() {
    let tls = ClientTlsConfig {
        server_name_override: Some("not a name".into()),
        ..ClientTlsConfig::default()
    };
    let err = HttpClient::<Full<Bytes>>::new(&tls, ClientOptions::default())
        .err()
        .expect("bad name");
    assert_eq!(err.key, "server_name_override");
}

#[test]
fn retry_after_takes_seconds_and_dates() {
    let mut h = HeaderMap::new();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(retry_after(&h, now), None);
    h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
    assert_eq!(retry_after(&h, now), Some(Duration::from_secs(3)));
    let later = httpdate::fmt_http_date(now + Duration::from_secs(42));
    h.insert(RETRY_AFTER, HeaderValue::from_str(&later).expect("ascii"));
    assert_eq!(retry_after(&h, now), Some(Duration::from_secs(42)));
    let past = httpdate::fmt_http_date(now - Duration::from_secs(42));
    h.insert(RETRY_AFTER, HeaderValue::from_str(&past).expect("ascii"));
    assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
    h.insert(RETRY_AFTER, HeaderValue::from_static("999999999"));
    assert_eq!(retry_after(&h, now), Some(MAX_RETRY_DELAY));
    h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
    assert_eq!(retry_after(&h, now), None);
}
