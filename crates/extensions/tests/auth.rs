//! `bearertokenauth` and `basicauth` built from YAML through their factories, as the service
//! builds them: config errors with key paths and no secrets, token files reloaded on change.

use std::time::{Duration, Instant};

use http::HeaderMap;
use redline_extensions::{BasicAuthFactory, BearerTokenAuthFactory};
use redline_pipeline::component::FactoryInfo;
use redline_pipeline::extension::{AuthCheck, AuthError, ExtensionCapabilities};
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{BuildContext, ComponentConfig, ExtensionFactory, RunningComponent};

fn section(id: &str, body: &str) -> ComponentConfig {
    let text = format!(
        "extensions:\n  {id}:\n{body}\nservice:\n  extensions: [{id}]\n  pipelines:\n    traces:\n      \
         receivers: [otlp]\n      exporters: [otlp]\n"
    );
    let cfg = redline_pipeline::config::load_str_with_env("test.yaml", &text, &|_| None)
        .unwrap_or_else(|e| panic!("loads: {e}"));
    cfg.extensions.into_iter().next().expect("one extension")
}

/// `id: value` on one line, a section that is a scalar.
fn section_scalar(id: &str, value: &str) -> ComponentConfig {
    let text = format!(
        "extensions:\n  {id}: {value}\nservice:\n  pipelines:\n    traces:\n      \
         receivers: [otlp]\n      exporters: [otlp]\n"
    );
    let cfg = redline_pipeline::config::load_str_with_env("test.yaml", &text, &|_| None)
        .unwrap_or_else(|e| panic!("loads: {e}"));
    cfg.extensions.into_iter().next().expect("one extension")
}

fn bearer_error(body: &str) -> String {
    BearerTokenAuthFactory
        .validate(&section("bearertokenauth", body))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

async fn build(
    factory: &dyn ExtensionFactory,
    config: &ComponentConfig,
) -> Result<(ExtensionCapabilities, Box<dyn RunningComponent>), String> {
    let ctx = BuildContext::new(Telemetry::new());
    factory.build(config, &ctx).await.map_err(|e| e.to_string())
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    h
}

/// The outcome of a check these extensions answer at once (tokens, plain passwords).
fn ready(check: AuthCheck) -> Result<(), AuthError> {
    match check {
        AuthCheck::Ready(result) => result,
        AuthCheck::Pending(_) => panic!("a cheap check must be answered at once"),
    }
}

#[test]
fn bearer_config_errors_name_the_key_and_hide_the_token() {
    assert_eq!(bearer_error("    token: abc"), "");
    assert_eq!(bearer_error("    tokens: [a, b]\n    scheme: Token"), "");
    assert_eq!(
        bearer_error("    filename: /run/token\n    header: X-Api-Key"),
        ""
    );

    let e = bearer_error("    scheme: Bearer");
    assert!(
        e.contains("extensions.bearertokenauth") && e.contains("no bearer token provided"),
        "{e}"
    );
    let e = bearer_error("    token: a\n    tokens: [b]");
    assert!(e.contains("extensions.bearertokenauth.tokens"), "{e}");
    let e = bearer_error("    tokens: [a, \"\"]");
    assert!(e.contains("extensions.bearertokenauth.tokens[1]"), "{e}");
    let e = bearer_error("    token: a\n    header: \"bad header\"");
    assert!(e.contains("extensions.bearertokenauth.header"), "{e}");
    let e = bearer_error("    filename: /t\n    wait_for_token_file: false");
    assert!(
        e.contains("wait_for_token_file") && e.contains("only `true`"),
        "{e}"
    );
    BearerTokenAuthFactory
        .validate(&section(
            "bearertokenauth",
            "    filename: /t\n    wait_for_token_file: true",
        ))
        .expect("what Redline does");
    let e = bearer_error("    token: a\n    retry_on_failure:\n      enabled: true");
    assert!(
        e.contains("retry_on_failure") && e.contains("does not support yet"),
        "{e}"
    );
    let e = bearer_error("    token:\n      nested: TOKEN-VALUE-42");
    assert!(e.contains("extensions.bearertokenauth.token"), "{e}");
    assert!(!e.contains("TOKEN-VALUE-42"), "{e}");
    let e = bearer_error("    tokens: TOKEN-VALUE-42");
    assert!(!e.contains("TOKEN-VALUE-42"), "{e}");
    let e = BearerTokenAuthFactory
        .validate(&section_scalar("bearertokenauth", "TOKEN-VALUE-42"))
        .expect_err("a scalar section")
        .to_string();
    assert!(
        e.contains("extensions.bearertokenauth") && !e.contains("TOKEN-VALUE-42"),
        "{e}"
    );
    let e = bearer_error("    tokn: TOKEN-VALUE-42");
    assert!(e.contains("tokn") && !e.contains("TOKEN-VALUE-42"), "{e}");
}

#[tokio::test]
async fn inline_tokens_authenticate() {
    let (caps, running) = build(
        &BearerTokenAuthFactory,
        &section("bearertokenauth", "    tokens: [first-t0ken, second-t0ken]"),
    )
    .await
    .expect("builds");
    let auth = caps.authenticator.expect("an authenticator");
    assert!(ready(auth.authenticate(&bearer("first-t0ken"))).is_ok());
    assert!(ready(auth.authenticate(&bearer("second-t0ken"))).is_ok());
    let e = ready(auth.authenticate(&bearer("third-t0ken"))).expect_err("refused");
    assert!(!e.to_string().contains("t0ken"), "{e}");
    running
        .shutdown(Instant::now() + Duration::from_secs(1))
        .await
        .expect("stops");
}

/// Polls until `cond` holds, at most 10 s.
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

#[tokio::test]
async fn token_file_is_reloaded_when_it_changes() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("token");
    std::fs::write(&file, "old-t0ken\n").expect("write");
    let body = format!("    filename: {}", file.display());
    let (caps, running) = build(&BearerTokenAuthFactory, &section("bearertokenauth", &body))
        .await
        .expect("builds");
    let auth = caps.authenticator.expect("an authenticator");
    assert!(ready(auth.authenticate(&bearer("old-t0ken"))).is_ok());

    // A longer file, so the change shows in the size even within one mtime tick.
    std::fs::write(&file, "new-t0ken-1\nnew-t0ken-2\n").expect("rewrite");
    assert!(
        eventually(|| ready(auth.authenticate(&bearer("new-t0ken-2"))).is_ok()).await,
        "the new token is accepted after the file changed"
    );
    assert!(ready(auth.authenticate(&bearer("new-t0ken-1"))).is_ok());
    assert!(ready(auth.authenticate(&bearer("old-t0ken"))).is_err());

    // An emptied file keeps the last tokens rather than locking every client out.
    std::fs::write(&file, "\n").expect("empty");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(ready(auth.authenticate(&bearer("new-t0ken-1"))).is_ok());

    running
        .shutdown(Instant::now() + Duration::from_secs(2))
        .await
        .expect("stops");
}

#[tokio::test]
async fn unreadable_or_empty_token_files_fail_the_build() {
    let e = build(
        &BearerTokenAuthFactory,
        &section("bearertokenauth", "    filename: /nonexistent/token"),
    )
    .await
    .err()
    .expect("fails");
    assert!(
        e.contains("filename") && e.contains("/nonexistent/token"),
        "{e}"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("token");
    std::fs::write(&file, "\n  \n").expect("write");
    let body = format!("    filename: {}", file.display());
    let e = build(&BearerTokenAuthFactory, &section("bearertokenauth", &body))
        .await
        .err()
        .expect("fails");
    assert!(e.contains("holds no token"), "{e}");
}

#[tokio::test]
async fn basicauth_from_yaml() {
    let e = BasicAuthFactory
        .validate(&section("basicauth", "    htpasswd: {}"))
        .expect_err("no source");
    assert!(
        e.to_string().contains("extensions.basicauth.htpasswd"),
        "{e}"
    );
    // One instance is a server or a client authenticator, never both (otelcol's rule).
    let e = BasicAuthFactory
        .validate(&section(
            "basicauth/both",
            "    client_auth:\n      username: u\n      password: PASSWORD-99\n    htpasswd:\n      inline: u:p",
        ))
        .expect_err("both sides");
    let e = e.to_string();
    assert!(
        e.contains("extensions.basicauth/both.client_auth")
            && e.contains("only one of")
            && !e.contains("PASSWORD-99"),
        "{e}"
    );
    let e = BasicAuthFactory
        .validate(&section("basicauth/none", "    {}"))
        .expect_err("neither side")
        .to_string();
    assert!(e.contains("at least one of"), "{e}");

    let (caps, _running) = build(
        &BasicAuthFactory,
        &section(
            "basicauth/metrics",
            "    htpasswd:\n      inline: |\n        prom:scrape-pass\n        other:x",
        ),
    )
    .await
    .expect("builds");
    let auth = caps.authenticator.expect("an authenticator");
    let mut h = HeaderMap::new();
    // base64("prom:scrape-pass")
    h.insert(
        "authorization",
        "Basic cHJvbTpzY3JhcGUtcGFzcw==".parse().expect("header"),
    );
    assert!(ready(auth.authenticate(&h)).is_ok());
    h.insert("authorization", "Basic cHJvbTp4".parse().expect("header"));
    assert!(ready(auth.authenticate(&h)).is_err());
}

#[tokio::test]
async fn basicauth_client_auth_sends_basic_credentials() {
    let (caps, _running) = build(
        &BasicAuthFactory,
        &section(
            "basicauth/grafana_cloud",
            "    client_auth:\n      username: \"123456\"\n      password: glc_s3cret",
        ),
    )
    .await
    .expect("builds");
    assert!(caps.authenticator.is_none(), "a client authenticator only");
    let client = caps.client_authenticator.expect("a client authenticator");
    let mut h = HeaderMap::new();
    client.add_credentials(&mut h, None).expect("credentials");
    // base64("123456:glc_s3cret")
    assert_eq!(h["authorization"], "Basic MTIzNDU2OmdsY19zM2NyZXQ=");
    assert!(h["authorization"].is_sensitive());
}

#[tokio::test]
async fn bearertokenauth_sends_its_first_token_and_follows_the_file() {
    let (caps, _running) = build(
        &BearerTokenAuthFactory,
        &section(
            "bearertokenauth",
            "    scheme: Token\n    header: X-Api-Key\n    tokens: [first-t0ken, second-t0ken]",
        ),
    )
    .await
    .expect("builds");
    let client = caps.client_authenticator.expect("a client authenticator");
    let mut h = HeaderMap::new();
    client.add_credentials(&mut h, None).expect("credentials");
    assert_eq!(h["x-api-key"], "Token first-t0ken");
    assert!(h.get("authorization").is_none());

    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("token");
    std::fs::write(&file, "old-t0ken\n").expect("write");
    let body = format!("    filename: {}", file.display());
    let (caps, running) = build(&BearerTokenAuthFactory, &section("bearertokenauth", &body))
        .await
        .expect("builds");
    let client = caps.client_authenticator.expect("a client authenticator");
    let sent = || {
        let mut h = HeaderMap::new();
        client.add_credentials(&mut h, None).expect("credentials");
        h["authorization"].to_str().expect("ascii").to_owned()
    };
    assert_eq!(sent(), "Bearer old-t0ken");
    std::fs::write(&file, "rotated-t0ken-1\nrotated-t0ken-2\n").expect("rewrite");
    assert!(
        eventually(|| sent() == "Bearer rotated-t0ken-1").await,
        "the rotated token is sent after the file changed"
    );
    running
        .shutdown(Instant::now() + Duration::from_secs(2))
        .await
        .expect("stops");
}
