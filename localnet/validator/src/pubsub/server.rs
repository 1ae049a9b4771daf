//! WebSocket transport: one task per connection, reading requests and writing out the
//! connection's queue of answers and notifications.

use {
    super::{subscriptions::Outbox, PubSub},
    futures_util::{SinkExt, StreamExt},
    std::sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    tokio::{
        net::{TcpListener, TcpStream},
        sync::{mpsc, Notify},
    },
    tokio_tungstenite::tungstenite::{protocol::WebSocketConfig, Message},
};

/// Messages queued for one connection before it counts as not reading and is cut off.
const QUEUE_CAPACITY: usize = 16 * 1024;
/// Largest request message accepted.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(0);

pub async fn serve(pubsub: Arc<PubSub>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                log::warn!("pubsub accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(pubsub.clone(), stream));
    }
}

async fn connection(pubsub: Arc<PubSub>, stream: TcpStream) {
    let config = WebSocketConfig {
        max_message_size: Some(MAX_MESSAGE_BYTES),
        max_frame_size: Some(MAX_MESSAGE_BYTES),
        ..WebSocketConfig::default()
    };
    let Ok(socket) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return; // not a websocket handshake
    };
    let (mut sink, mut source) = socket.split();
    let (sender, mut queue) = mpsc::channel::<String>(QUEUE_CAPACITY);
    let kill = Arc::new(Notify::new());
    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    let outbox = Arc::new(Outbox::new(id, sender, kill.clone()));
    loop {
        tokio::select! {
            incoming = source.next() => match incoming {
                Some(Ok(Message::Text(text))) => handle(&pubsub, &outbox, text).await,
                Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes) {
                    Ok(text) => handle(&pubsub, &outbox, text).await,
                    Err(_) => break,
                },
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {} // ping/pong: answered by the protocol layer
            },
            outgoing = queue.recv() => match outgoing {
                Some(text) => {
                    if sink.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            _ = kill.notified() => break,
        }
    }
    pubsub.registry().drop_connection(id);
    let _ = sink.close().await;
}

/// Requests may read banks; they run off the async threads.
async fn handle(pubsub: &Arc<PubSub>, outbox: &Arc<Outbox>, text: String) {
    let pubsub = pubsub.clone();
    let outbox = outbox.clone();
    let _ = tokio::task::spawn_blocking(move || pubsub.handle_message(&outbox, &text)).await;
}
