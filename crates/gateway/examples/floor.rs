//! The floor of keyfence's HTTP stack, for `scripts/bench-gateway` (target `floor`): a reverse
//! proxy on the same parts as the gateway (tokio, hyper's server and client connections, the
//! body collected before forwarding, as the gateway does) that checks, signs and journals
//! nothing. What it adds over a direct connection is what the parts cost before keyfence does
//! any work of its own.
//!
//! Usage: floor LISTEN_ADDR UPSTREAM_ADDR   (one thread; one upstream connection per client
//! connection, kept alive)

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        return Err("usage: floor LISTEN_ADDR UPSTREAM_ADDR".into());
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?
        .block_on(serve(listen, upstream))
}

async fn serve(listen: String, upstream: String) -> Result<(), Failure> {
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
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let send = Arc::clone(&send);
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let answer = send
                            .lock()
                            .await
                            .send_request(hyper::Request::from_parts(parts, Full::new(body)))
                            .await?;
                        let (parts, body) = answer.into_parts();
                        let body = body.collect().await?.to_bytes();
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
