//! A real accept loop while the process is out of file descriptors. Alone in its test binary: it
//! lowers this process's descriptor limit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracegw_runtime::{AcceptBackoff, accept_with};

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn nofile() -> libc::rlimit {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit
}

fn set_nofile(limit: libc::rlimit) {
    // SAFETY: setrlimit reads the struct it is given.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
}

/// Scenario: a client is waiting in the backlog while every file descriptor of the process is
/// taken, so each `accept(2)` fails with EMFILE, for 1.5 s; then descriptors are freed.
/// Guarantees: the loop makes a handful of attempts (not the millions of a busy loop) and logs one
/// warning naming the listener; once descriptors are free the waiting client is accepted within
/// the longest backoff.
#[tokio::test(flavor = "current_thread")]
async fn out_of_descriptors_backs_off_and_recovers() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let original = nofile();
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    set_nofile(libc::rlimit { rlim_cur: open + 8, rlim_max: original.rlim_max });
    let mut hogs = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hogs.push(f);
    }
    assert!(std::fs::File::open("/dev/null").is_err(), "descriptors are exhausted");

    let attempts = AtomicU64::new(0);
    let mut backoff = AcceptBackoff::new("test-listener");
    let started = Instant::now();
    let freed = Arc::new(Mutex::new(Some(hogs)));
    let release = Arc::clone(&freed);
    let freeing = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let hogs = release.lock().unwrap().take();
        drop(hogs);
        Instant::now()
    });
    let accepted = tokio::time::timeout(
        Duration::from_secs(5),
        accept_with(&mut backoff, || {
            attempts.fetch_add(1, Ordering::Relaxed);
            listener.accept()
        }),
    )
    .await
    .expect("accepted once descriptors were free");
    let freed_at = freeing.await.unwrap();
    set_nofile(original);

    let (_, peer) = accepted;
    assert_eq!(peer, client.local_addr().unwrap());
    let n = attempts.load(Ordering::Relaxed);
    assert!((3..=14).contains(&n), "{n} accept attempts in {:?}", started.elapsed());
    assert!(backoff.errors() >= 2 && backoff.errors() == n - 1, "{} errors", backoff.errors());
    let waited = freed_at.elapsed();
    assert!(waited <= Duration::from_millis(1300), "accepted {waited:?} after descriptors were freed");
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("test-listener") && warnings[0].contains("backing off"), "{log}");
}
