//! Rejections are logged with `tracing::warn!`, with the remote address
//! and the reason as fields.

mod common;

use common::{LogBuffer, RawPeer, assert_closed, config, start, stats_until, write_frame};

#[tokio::test]
async fn rejections_are_logged_as_warnings_with_peer_and_reason() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    // Global, and alone in this test binary: a thread-scoped subscriber
    // races with other tests' threads over tracing's per-callsite cache.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let mut cfg = config("b");
    cfg.max_frame_bytes = 4096;
    let b = start(cfg).await;
    let a = start(config("a")).await;
    let mut forger = RawPeer::connect_with(b.addr(), b"not the cluster secret", "m", "b").await;
    let local = forger.stream.local_addr().unwrap();
    let forged = forger.hello_body("127.0.0.1:9", 1);
    write_frame(&mut forger.stream, &forged).await;
    assert_closed(&mut forger.stream).await;
    stats_until(&b.transport, |s| s.rejected_unauthenticated == 1).await;

    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("rejected frame"))
        .unwrap_or_else(|| panic!("no rejection logged in {text:?}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&format!("peer={local}")), "{line}");
    assert!(line.contains("reason=bad HMAC"), "{line}");
    a.shutdown().await;
    b.shutdown().await;
}
