//! Runs an HTTP/2 server connection and its streams in one task.
//!
//! hyper hands every request stream to its executor, and with tokio's executor each becomes a task
//! of its own: spawned, woken when its DATA frames arrive, handing its response back to the
//! connection's task, often on the other worker thread. For OTLP, where a stream lives for one small
//! unary call, those hand-offs (a task allocation, cross-thread wake-ups, `futex` calls, context
//! switches) cost more than the call's own work. [`StreamQueue`] is an executor that queues the
//! stream futures instead, and [`Inline`] polls them inside the connection's task, right after the
//! connection has read their frames, and polls the connection again right after they answered, so
//! that a response is written in the same turn. Wake-ups that happen while the task is being polled
//! only mark it for another round: waking the running task would have tokio queue it again and
//! rouse the other worker to take it, the very cross-thread hand-off this module exists to avoid.
//!
//! The price: one connection's requests are processed on one thread at a time. Connections still
//! spread over the workers, and a node's gateway serves many (every pod, every sidecar); export and
//! compression run in tasks of their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use futures::task::AtomicWaker;

/// How often one poll of [`Inline`] goes around connection and streams before it yields, so that a
/// busy connection does not keep its worker from other tasks.
const MAX_ROUNDS_PER_POLL: usize = 8;

type StreamFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// hyper's executor for one connection: stream futures wait here for the connection's task.
#[derive(Clone, Default)]
pub struct StreamQueue(Arc<Mutex<Vec<StreamFuture>>>);

/// A connection future together with the streams its executor queued.
pub struct Inline<C: Future> {
    connection: Pin<Box<C>>,
    closed: Option<C::Output>,
    streams: FuturesUnordered<StreamFuture>,
    queue: StreamQueue,
    wake: Arc<RoundWaker>,
    /// `wake` as a [`Waker`], made once.
    waker: Waker,
}

/// The waker connection and streams are polled with: during a poll it only asks for another round;
/// otherwise it wakes the task.
#[derive(Debug, Default)]
struct RoundWaker {
    polling: AtomicBool,
    woken: AtomicBool,
    task: AtomicWaker,
}

// === impl StreamQueue ===

impl StreamQueue {
    /// Moves the queued futures into `streams`.
    fn drain_into(&self, streams: &mut FuturesUnordered<StreamFuture>) {
        let mut queued = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        streams.extend(queued.drain(..));
    }
}

impl<F> hyper::rt::Executor<F> for StreamQueue
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(Box::pin(future));
    }
}

impl std::fmt::Debug for StreamQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamQueue").finish_non_exhaustive()
    }
}

// === impl Inline ===

impl<C: Future> Inline<C> {
    /// Polls `connection`, built with `queue` as its executor, and the streams it starts.
    pub fn new(connection: C, queue: StreamQueue) -> Self {
        let wake = Arc::new(RoundWaker::default());
        Self {
            connection: Box::pin(connection),
            closed: None,
            streams: FuturesUnordered::new(),
            queue,
            waker: Waker::from(Arc::clone(&wake)),
            wake,
        }
    }
}

impl<C: Future> Future for Inline<C>
where
    C::Output: Unpin,
{
    /// The connection's result, once it has closed and every stream has finished.
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = self.get_mut();
        this.wake.task.register(cx.waker());
        let mut inner = Context::from_waker(&this.waker);
        for _ in 0..MAX_ROUNDS_PER_POLL {
            // Sequentially consistent with `RoundWaker::wake_by_ref`: a wake-up either sees
            // `polling` cleared and wakes the task, or is seen here.
            this.wake.polling.store(true, Ordering::SeqCst);
            this.wake.woken.store(false, Ordering::SeqCst);
            if this.closed.is_none()
                && let Poll::Ready(output) = this.connection.as_mut().poll(&mut inner)
            {
                this.closed = Some(output);
            }
            this.queue.drain_into(&mut this.streams);
            while let Poll::Ready(Some(())) = this.streams.poll_next_unpin(&mut inner) {}
            if this.streams.is_empty()
                && let Some(output) = this.closed.take()
            {
                this.wake.polling.store(false, Ordering::SeqCst);
                return Poll::Ready(output);
            }
            // A stream that answered has woken the connection to write the response, the
            // connection has woken streams with their frames: go round again, now.
            if !this.wake.woken.load(Ordering::SeqCst) {
                this.wake.polling.store(false, Ordering::SeqCst);
                if !this.wake.woken.load(Ordering::SeqCst) {
                    return Poll::Pending;
                }
            }
        }
        this.wake.polling.store(false, Ordering::SeqCst);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

// === impl RoundWaker ===

impl Wake for RoundWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            self.task.wake();
        }
    }
}

impl<C: Future> std::fmt::Debug for Inline<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inline").field("streams", &self.streams.len()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Scenario: a connection that closes at once has queued three streams, each of which finishes
    /// only when another OS thread releases it, one after another.
    /// Guarantees: `Inline` is woken from outside its task for each of them, and resolves with the
    /// connection's result only once every stream has finished.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn resolves_once_its_streams_finish_woken_from_other_threads() {
        let queue = StreamQueue::default();
        let (finished_tx, finished_rx) = std::sync::mpsc::channel();
        let mut releases = Vec::new();
        for i in 0..3 {
            let (release, released) = tokio::sync::oneshot::channel::<()>();
            releases.push(release);
            let finished = finished_tx.clone();
            hyper::rt::Executor::execute(&queue, async move {
                released.await.unwrap();
                finished.send(i).unwrap();
            });
        }
        let inline = tokio::spawn(Inline::new(async { 7 }, queue));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!inline.is_finished(), "resolved while its streams were still running");
        std::thread::spawn(move || {
            for release in releases {
                std::thread::sleep(Duration::from_millis(10));
                release.send(()).unwrap();
            }
        });
        let output = tokio::time::timeout(Duration::from_secs(5), inline).await.unwrap().unwrap();
        assert_eq!(output, 7);
        assert_eq!(finished_rx.try_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
    }
}
