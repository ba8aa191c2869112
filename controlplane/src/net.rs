//! Accepting connections, shared by the metrics endpoint and the snapshot channel.

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The next accepted connection, or `None` once `stop` fires. A failed accept (a client gone before
/// it was taken, a momentary lack of file descriptors) is skipped.
pub(crate) async fn next_connection(listener: &TcpListener, stop: &CancellationToken) -> Option<TcpStream> {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return None,
            accepted = listener.accept() => if let Ok((stream, _)) = accepted {
                return Some(stream);
            },
        }
    }
}
