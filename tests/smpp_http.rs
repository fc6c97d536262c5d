//! The HTTP SMS transport against a provider stand-in on 127.0.0.1 port 0:
//! templated request, provider id read from JSON, 503 retried, 400 failing
//! the message, and `submit_blocking` returning while the provider is held;
//! across abrupt stops, a request that may have reached the provider is
//! never sent again and one that cannot have is.

#[path = "smpp/harness.rs"]
mod harness;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::*;
use rivr::sms::{MessageState, SmsService};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

/// A provider: answers 503 to the first request, 400 to texts containing
/// "reject", else 200 with a JSON id; waits for `open` before answering.
async fn provider(requests: Arc<Mutex<Vec<String>>>, open: watch::Receiver<bool>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut n = 0u32;
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let mut got = Vec::new();
            // Read the head and the Content-Length body.
            loop {
                let k = s.read(&mut buf).await.unwrap_or(0);
                if k == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..k]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        // Header names are case-insensitive (ureq writes them lower-case).
                        .find_map(|l| {
                            l.split_once(':')
                                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                                .map(|(_, v)| v)
                        })
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0usize);
                    if body.len() >= len {
                        break;
                    }
                }
            }
            let req = String::from_utf8_lossy(&got).to_string();
            requests.lock().unwrap().push(req.clone());
            let mut o = open.clone();
            let _ = o.wait_for(|v| *v).await;
            n += 1;
            let resp = if n == 1 {
                "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n".to_string()
            } else if req.contains("reject") {
                "HTTP/1.1 400 Bad\r\nContent-Length: 3\r\n\r\nbad".to_string()
            } else {
                let body = format!("{{\"ok\":true,\"message_id\":\"prov-{n}\"}}");
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
            };
            let _ = s.write_all(resp.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    });
    port
}

fn http_config(dir: &std::path::Path, port: u16) -> rivr::config::Config {
    let path = dir.join("rivr.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\nurl = \"sqlite://{}/rivr.db\"\n\n[sms_http]\nurl = \"http://127.0.0.1:{port}/v1/sms\"\n\
             content_type = \"application/x-www-form-urlencoded\"\nbody = \"to={{to}}&from={{from}}&text={{text}}&ref={{id}}\"\n\
             message_id = \"json:message_id\"\nfrom = \"RIVR\"\nheaders = {{ Authorization = \"Bearer t0k\" }}\n",
            dir.display()
        ),
    )
    .unwrap();
    load_config(&path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_transport_sends_retries_and_reads_the_provider_id() {
    let dir = temp_dir("http");
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (open_tx, open_rx) = watch::channel(false);
    let port = provider(requests.clone(), open_rx).await;
    let svc = SmsService::start(&http_config(&dir, port)).await.unwrap();

    // A script thread: the id comes back while the provider is still held.
    let blocking = svc.clone();
    let done = Arc::new(Notify::new());
    let done2 = done.clone();
    let t = std::thread::spawn(move || {
        let id = blocking
            .submit_blocking("+15550001", "Hi & welcome €")
            .unwrap();
        done2.notify_one();
        id
    });
    done.notified().await;
    let id = t.join().unwrap();
    assert_eq!(svc.status(&id).await.unwrap(), MessageState::Queued);
    assert!(wait_until(Duration::from_secs(5), || !requests
        .lock()
        .unwrap()
        .is_empty()));
    open_tx.send(true).unwrap();

    let s = svc
        .wait_for(&id, Duration::from_secs(20), |s| s != MessageState::Queued)
        .await
        .unwrap();
    assert_eq!(s, MessageState::Submitted);
    let ids = svc.store().part_smsc_ids(&id).await.unwrap();
    assert_eq!(ids, [Some("prov-2".to_string())]);
    let reqs = requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2, "a 503 then a retry");
    let r = &reqs[1];
    assert!(r.starts_with("POST /v1/sms HTTP/1.1\r\n"), "{r}");
    assert!(
        r.to_ascii_lowercase()
            .contains("\r\nauthorization: bearer t0k\r\n"),
        "{r}"
    );
    assert!(
        r.contains(&format!(
            "to=%2B15550001&from=RIVR&text=Hi%20%26%20welcome%20%E2%82%AC&ref={id}.1"
        )),
        "{r}"
    );

    let bad = svc.submit("15550002", "please reject").await.unwrap();
    let s = svc
        .wait_for(&bad, Duration::from_secs(20), MessageState::is_final)
        .await
        .unwrap();
    assert_eq!(s, MessageState::Failed);

    // On a runtime thread the blocking call refuses instead of deadlocking.
    assert!(matches!(
        svc.submit_blocking("1", "x"),
        Err(rivr::sms::SmsError::BlockingInRuntime)
    ));
    assert!(matches!(
        svc.submit("12ab", "x").await,
        Err(rivr::sms::SmsError::BadNumber(_))
    ));
    svc.shutdown(Duration::from_secs(2)).await;
}

/// A provider that reads each request, records it, and never answers.
async fn silent_provider(requests: Arc<Mutex<Vec<String>>>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let k = s.read(&mut buf).await.unwrap_or(0);
            requests
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..k]).to_string());
            held.push(s);
        }
    });
    port
}

/// A port with nothing listening on it.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Stopping the service aborts its driver, as a crash would (the store
/// keeps what was written before).
async fn stop_abruptly(svc: SmsService) {
    svc.shutdown(Duration::from_millis(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resends_only_what_never_reached_the_provider() {
    let dir = temp_dir("http-restart");
    // Run 1: the provider takes the request and never answers; the process
    // stops. The provider may have taken the text, so it is not sent again.
    let held = Arc::new(Mutex::new(Vec::new()));
    let port = silent_provider(held.clone()).await;
    let svc = SmsService::start(&http_config(&dir, port)).await.unwrap();
    let taken = svc.submit("15550001", "taken, maybe").await.unwrap();
    assert!(wait_until(Duration::from_secs(5), || !held
        .lock()
        .unwrap()
        .is_empty()));
    stop_abruptly(svc).await;

    // Run 2: the provider is down (connection refused), so nothing reached
    // it; the process stops during the backoff.
    let svc = SmsService::start(&http_config(&dir, closed_port().await))
        .await
        .unwrap();
    assert_eq!(svc.status(&taken).await.unwrap(), MessageState::Unknown);
    let refused = svc.submit("15550002", "never left").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(svc.status(&refused).await.unwrap(), MessageState::Queued);
    stop_abruptly(svc).await;

    // Run 3: a working provider (503 to its first request, then 200) gets
    // the second text, the first never.
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (_open_tx, open_rx) = watch::channel(true);
    let port = provider(requests.clone(), open_rx).await;
    let svc = SmsService::start(&http_config(&dir, port)).await.unwrap();
    let s = svc
        .wait_for(&refused, Duration::from_secs(20), |s| {
            s != MessageState::Queued
        })
        .await
        .unwrap();
    assert_eq!(s, MessageState::Submitted);
    let reqs = requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2, "a 503 then a retry: {reqs:?}");
    for r in &reqs {
        assert!(r.contains(&format!("ref={refused}.1")), "{r}");
    }
    assert_eq!(svc.status(&taken).await.unwrap(), MessageState::Unknown);
    let errors = svc.store().part_errors(&taken).await.unwrap();
    assert_eq!(errors, [Some(rivr::store::INTERRUPTED.to_string())]);
    svc.shutdown(Duration::from_secs(2)).await;
}
