//! Two nodes in one process on loopback: remote call round trip (p50/p99)
//! and forwarded-message throughput over one link, with bytes on the wire.
//!
//! `cargo run --release -p girder-cluster --example dist_bench`

use std::time::{Duration, Instant};

use girder_cluster::{start, ClusterOptions, Payload, RemoteMessage, ECHO};
use prost::Message as _;
use tokio::sync::mpsc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let opts = |name: &str| -> anyhow::Result<ClusterOptions> {
        let mut o = ClusterOptions::new(name, "bench", "bench")?;
        o.dist_bind = "127.0.0.1:0".parse()?;
        Ok(o)
    };
    let a = start(opts("a@127.0.0.1")?).await?;
    let b = start(opts("b@127.0.0.1")?).await?;
    b.join(&format!("{}:{}", a.node(), a.local_addr().port()))
        .await?;

    let mut rtts = Vec::with_capacity(20_000);
    for i in 0..22_000u32 {
        let t = Instant::now();
        b.call(
            a.node(),
            ECHO,
            Payload::new("ping", i.to_be_bytes().to_vec()),
            Duration::from_secs(1),
        )
        .await?;
        if i >= 2_000 {
            rtts.push(t.elapsed());
        }
    }
    rtts.sort();
    let pct = |p: f64| rtts[((rtts.len() as f64 * p) as usize).min(rtts.len() - 1)];
    println!(
        "call round trip: p50 {:?}  p99 {:?}  (n = {})",
        pct(0.50),
        pct(0.99),
        rtts.len()
    );

    let (tx, mut rx) = mpsc::unbounded_channel::<RemoteMessage>();
    a.register("sink", tx)?;
    const N: usize = 1_000_000;
    let payload = Payload::new("girder.mqtt.v1.Forward", vec![7u8; 64]);
    let t = Instant::now();
    let sender = {
        let (b, a_name, payload) = (b.clone(), a.node().clone(), payload.clone());
        tokio::spawn(async move {
            for i in 0..N {
                b.send(&a_name, "sink", payload.clone()).expect("link up");
                if i % 4096 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    for _ in 0..N {
        rx.recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("sink closed"))?;
    }
    sender.await?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "forwarded 64-byte messages over one link: {:.0} msg/s",
        N as f64 / secs
    );
    // Bytes per message in a full batch: the protobuf envelope inside a Batch frame
    // (HTTP/2 and gRPC framing add 14 bytes per frame, spread over the batch).
    let env = girder_proto::dist::Envelope {
        body: Some(girder_proto::dist::envelope::Body::Cast(
            girder_proto::dist::Cast {
                to: "sink".into(),
                payload: Some(girder_proto::dist::Payload {
                    type_name: payload.type_name.clone(),
                    data: payload.data.clone(),
                }),
                reply_to: String::new(),
            },
        )),
    };
    let one = env.encoded_len();
    println!("bytes on the wire per forwarded 64-byte message: {} (envelope {one} + field tag/length 2..3)", one + 3);
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}
