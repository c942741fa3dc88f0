//! The floor of keyfence's HTTP stack, for `scripts/bench-gateway` (target `floor`): a reverse
//! proxy on the same parts as the gateway (tokio, hyper's server and client connections, the
//! body collected before forwarding, as the gateway does) that checks, signs and journals
//! nothing. What it adds over a direct connection is what the parts cost before keyfence does
//! any work of its own.
//!
//! With `--durable DIR` (target `floor-fsync`) it also makes each request durable the way the
//! gateway makes an order's reservation durable under `sync = "full"`, and does nothing else: a
//! 256-byte `pwrite` to a preallocated file on the request's thread before it is forwarded, an
//! `fdatasync` on a thread of its own (one for every write made since the last, as the gateway's
//! syncer does) while the request is upstream, and the answer held until that fsync is done.
//! What it adds is the least a proxy on these parts can add with a durable record per request.
//!
//! Usage: floor LISTEN_ADDR UPSTREAM_ADDR [--durable DIR]   (one thread; one upstream
//! connection per client connection, kept alive)

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: floor LISTEN_ADDR UPSTREAM_ADDR [--durable DIR]";
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        return Err(usage.into());
    };
    let durable = match (args.next().as_deref(), args.next(), args.next()) {
        (None, _, _) => None,
        (Some("--durable"), Some(dir), None) => Some(Durable::open(Path::new(&dir))?),
        _ => return Err(usage.into()),
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?
        .block_on(serve(listen, upstream, durable))
}

/// Bytes per record: about what the gateway's reservation log writes for an order.
const RECORD: u64 = 256;
/// The file's size: preallocated (zeros, fsynced), so an fsync writes data, not metadata;
/// records wrap around in it.
const CAPACITY: u64 = 16 << 20;

/// A preallocated file, a write per request, and a thread that fsyncs it for every write made
/// since its last fsync.
struct Durable {
    file: File,
    next: AtomicU64,
    /// Who waits for the next fsync, and the syncer's wake-up.
    waiting: Mutex<Vec<oneshot::Sender<()>>>,
    wake: Condvar,
}

impl Durable {
    fn open(dir: &Path) -> Result<Arc<Self>, Failure> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("floor.log"))?;
        let zeros = vec![0u8; 1 << 20];
        for i in 0..CAPACITY / (1 << 20) {
            file.write_all_at(&zeros, i << 20)?;
        }
        file.sync_all()?;
        let durable = Arc::new(Durable {
            file,
            next: AtomicU64::new(0),
            waiting: Mutex::default(),
            wake: Condvar::new(),
        });
        let d = Arc::clone(&durable);
        std::thread::Builder::new()
            .name("floor-fsync".into())
            .spawn(move || d.syncer())?;
        Ok(durable)
    }

    /// Write a record; the receiver answers once an fsync after the write is done.
    fn append(&self) -> std::io::Result<oneshot::Receiver<()>> {
        let at = self.next.fetch_add(RECORD, Ordering::Relaxed) % CAPACITY;
        let record = [b'r'; RECORD as usize];
        self.file.write_all_at(&record, at)?;
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .push(tx);
        self.wake.notify_one();
        Ok(rx)
    }

    /// The syncer thread. Ends the process when it cannot go on: no request may wait for an
    /// fsync that will not come, and none may be answered without one.
    fn syncer(&self) {
        let stop = |why: &dyn std::fmt::Display| -> ! {
            eprintln!("floor: {why}");
            std::process::exit(1)
        };
        loop {
            let batch = {
                let mut q = self.waiting.lock().unwrap_or_else(|e| stop(&e));
                while q.is_empty() {
                    q = self.wake.wait(q).unwrap_or_else(|e| stop(&e));
                }
                std::mem::take(&mut *q)
            };
            if let Err(e) = self.file.sync_data() {
                stop(&format_args!("fsync failed: {e}"));
            }
            batch
                .into_iter()
                .for_each(|t| t.send(()).unwrap_or_default());
        }
    }
}

async fn serve(
    listen: String,
    upstream: String,
    durable: Option<Arc<Durable>>,
) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    loop {
        let (client, _) = listener.accept().await?;
        client.set_nodelay(true)?;
        let up = tokio::net::TcpStream::connect(&upstream).await?;
        up.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(up)).await?;
        tokio::spawn(conn);
        // One request at a time per client connection (HTTP/1.1), so one upstream connection.
        let send = Arc::new(tokio::sync::Mutex::new(send));
        let durable = durable.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let send = Arc::clone(&send);
                    let durable = durable.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await?.to_bytes();
                        // The record is written before the request leaves, or it does not leave.
                        let synced = match durable.as_ref().map(|d| d.append()) {
                            None => None,
                            Some(Ok(rx)) => Some(rx),
                            Some(Err(_)) => return Ok(failed()),
                        };
                        let answer = send
                            .lock()
                            .await
                            .send_request(hyper::Request::from_parts(parts, Full::new(body)))
                            .await?;
                        let (parts, body) = answer.into_parts();
                        let body = body.collect().await?.to_bytes();
                        if let Some(rx) = synced
                            && rx.await.is_err()
                        {
                            // No durable record: the answer is withheld.
                            return Ok(failed());
                        }
                        Ok::<_, hyper::Error>(hyper::Response::from_parts(
                            parts,
                            Full::<Bytes>::new(body),
                        ))
                    }
                });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(client), service)
                .await
            {
                eprintln!("floor: connection ended: {e}");
            }
        });
    }
}

fn failed() -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from_static(b"floor: no durable record")));
    *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
    r
}
