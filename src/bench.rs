//! `girder bench`: an MQTT load generator in the habits of emqtt-bench, and
//! the report step that turns its JSON results into tables and a chart.
//!
//! Scenarios (each bounded by `--duration` and, where it applies, a count):
//!
//! - `conn`: N connections at a given rate, spread over several local
//!   source addresses (127.0.0.1, 127.0.0.2, ...) to pass the ephemeral-port
//!   limit of one address, then held idle (connect rate, broker RSS per
//!   connection).
//! - `pub`, `sub`: publishers only, subscribers only (the halves of a
//!   cluster run, where they target different nodes).
//! - `pubsub`: subscribers, then publishers, in one run: throughput,
//!   latency from the send timestamp in the payload, losses, duplicates.
//! - `storm`: retained messages, then a storm of subscribers receiving them.
//! - `report`: Markdown tables with girder/peer ratios and a PNG chart from
//!   the JSON files of earlier runs.
//!
//! The client is written on tokio with `girder_broker::codec` (a client-side
//! decoder, zero-copy payloads); many connections share a few worker
//! threads, since the generator shares the machine with the broker.
//!
//! # Layout
//!
//! - `bench.rs`: the command line, [`BenchError`], [`run`].
//! - `bench/pattern.rs`: `%i`/`%c` topic patterns, topic matching, fan-out.
//! - `bench/payload.rs`: the timestamp and sequence header of payloads.
//! - `bench/client.rs`: connect (from a chosen source address), subscribe,
//!   packet reader and buffered writer.
//! - `bench/stats.rs`: counters, latency histograms, stream tracking.
//! - `bench/procstat.rs`: the broker's CPU and RSS from /proc.
//! - `bench/roles.rs`: what one connection does (idle, publish, subscribe).
//! - `bench/scenario.rs`: the scenarios, from connect phase to summary.
//! - `bench/summary.rs`: the result of a run, as text and JSON.
//! - `bench/report.rs`: Markdown and PNG from many results.

mod client;
mod pattern;
mod payload;
mod procstat;
mod report;
mod roles;
mod scenario;
mod stats;
mod summary;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use girder_broker::codec::{
    DecodeError, EncodeError, PacketType, ProtocolVersion, QoS, ReasonCode,
};

/// Errors of the load generator and the report step.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    /// A socket or file operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The broker sent bytes that do not decode.
    #[error("cannot decode a packet from the broker: {0}")]
    Decode(#[from] DecodeError),
    /// A packet could not be encoded.
    #[error("cannot encode a packet: {0}")]
    Encode(#[from] EncodeError),
    /// The broker refused a CONNECT or a SUBSCRIBE.
    #[error("refused by the broker: {0:?}")]
    Refused(ReasonCode),
    /// The broker closed the connection.
    #[error("connection closed by the broker")]
    Closed,
    /// A packet of the wrong type arrived.
    #[error("unexpected {0:?} while waiting for {1}")]
    Unexpected(PacketType, &'static str),
    /// The broker did not answer in time.
    #[error("no {1} within {0:?}")]
    Timeout(Duration, &'static str),
    /// The options do not describe a possible run.
    #[error("{0}")]
    Usage(String),
    /// A result file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A result file is not valid JSON of a run.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The chart could not be drawn.
    #[error("chart: {0}")]
    Chart(String),
}

/// `girder bench`: load a broker, or report on earlier runs.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Boxed: the load options are large next to the other commands'.
    #[command(subcommand)]
    command: Box<BenchCommand>,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Open connections at a rate and hold them idle (connect rate, RSS per
    /// connection).
    Conn {
        #[command(flatten)]
        common: CommonArgs,
        /// Connections to open.
        #[arg(short = 'c', long, default_value_t = 1000)]
        count: usize,
        /// Seconds to hold them once connected.
        #[arg(long, default_value_t = 5)]
        hold: u64,
    },
    /// Publishers only (their subscribers run elsewhere, e.g. another node).
    Pub {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        publish: PublishArgs,
    },
    /// Subscribers only (their publishers run elsewhere).
    Sub {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        subscribe: SubscribeArgs,
    },
    /// Subscribers, then publishers, in one run: throughput, latency,
    /// losses and duplicates.
    Pubsub {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        publish: PublishArgs,
        #[command(flatten)]
        subscribe: SubscribeArgs,
        /// Brokers for the subscribers (default: --host), so that
        /// publishers and subscribers can use different nodes.
        #[arg(long = "sub-host")]
        sub_hosts: Vec<SocketAddr>,
        /// Seconds to wait for messages still in flight after publishing
        /// stops; what has not arrived then counts as lost.
        #[arg(long, default_value_t = 5)]
        drain: u64,
    },
    /// Publish retained messages, then connect subscribers that each
    /// receive all of them (a retained-heavy subscribe storm).
    Storm {
        #[command(flatten)]
        common: CommonArgs,
        /// Retained messages to publish first (topic `--topic` with `%i`
        /// the message number).
        #[arg(long, default_value_t = 1000)]
        retained: usize,
        /// Topic pattern of the retained messages.
        #[arg(short = 't', long, default_value = "bench/retained/%i")]
        topic: String,
        /// Subscribers in the storm.
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        /// What they subscribe to.
        #[arg(long = "sub-topic", default_value = "bench/retained/#")]
        sub_topic: String,
        /// Payload size in bytes.
        #[arg(short = 's', long, default_value_t = 64)]
        size: usize,
    },
    /// Markdown tables and a PNG chart from the JSON results in a directory.
    Report {
        /// Directory holding `*.json` results (from `--out`).
        dir: PathBuf,
        /// Where to write the Markdown (default: DIR/report.md).
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Where to write the chart (default: DIR/chart.png).
        #[arg(long)]
        png: Option<PathBuf>,
        /// The broker the ratios are about.
        #[arg(long, default_value = "girder")]
        subject: String,
        /// Broker columns after the subject, in order (a listed broker with
        /// no results shows as missing); when given, other brokers' results
        /// are left out.
        #[arg(long, value_delimiter = ',')]
        brokers: Vec<String>,
        /// A TrueType font for the chart's text.
        #[arg(
            long,
            default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
        )]
        font: PathBuf,
    },
}

/// The MQTT version of the clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Version {
    /// MQTT 3.1.1.
    #[value(name = "3")]
    V3,
    /// MQTT 5.0.
    #[value(name = "5")]
    V5,
}

/// Options shared by the load scenarios.
#[derive(Debug, Clone, Args)]
struct CommonArgs {
    /// Broker address (repeatable: clients are spread over them in turn).
    #[arg(long = "host", default_value = "127.0.0.1:1883")]
    hosts: Vec<SocketAddr>,
    /// Local source addresses to connect from, comma-separated.
    #[arg(long, value_delimiter = ',')]
    ifaddr: Vec<IpAddr>,
    /// Use 127.0.0.1 .. 127.0.0.N as source addresses (ignored with --ifaddr).
    #[arg(long, default_value_t = 1)]
    sources: u8,
    /// MQTT version.
    #[arg(long = "mqtt", value_enum, default_value = "3")]
    version: Version,
    /// Keep alive in seconds.
    #[arg(long, default_value_t = 300)]
    keepalive: u16,
    /// New connections per second.
    #[arg(long = "connect-rate", default_value_t = 1000)]
    connect_rate: u32,
    /// Seconds to wait for one CONNACK or SUBACK.
    #[arg(long = "connect-timeout", default_value_t = 10)]
    connect_timeout: u64,
    /// Seconds of load (publishing, or holding connections) at most.
    #[arg(short = 'd', long, default_value_t = 10)]
    duration: u64,
    /// Worker threads of the generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Client id prefix (ids are PREFIX-ROLE-INDEX).
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the JSON summary to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Scenario name recorded in the JSON (for reports).
    #[arg(long, default_value = "")]
    label: String,
    /// Broker name recorded in the JSON (for reports).
    #[arg(long = "broker-name", default_value = "")]
    broker_name: String,
    /// Pid of the broker on this machine: its CPU and RSS are sampled.
    #[arg(long = "broker-pid")]
    broker_pid: Option<u32>,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
}

/// What publishers do.
#[derive(Debug, Clone, Args)]
struct PublishArgs {
    /// Publisher connections.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Topic pattern (`%i`: publisher number from 1, `%c`: client id).
    #[arg(short = 't', long, default_value = "bench/%i")]
    topic: String,
    /// Payload size in bytes (at least 20: timestamp and sequence).
    #[arg(short = 's', long, default_value_t = 64)]
    size: usize,
    /// QoS of the publishes.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Total messages per second over all publishers (0: as fast as the
    /// in-flight window allows).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Messages per publisher at most (0: until --duration).
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// At most this many in flight over all publishers: with subscribers
    /// in the run, deliveries not yet received (any QoS); without them,
    /// publishes awaiting their PUBACK/PUBCOMP (QoS 1/2). 0: no bound.
    #[arg(long, default_value_t = 0)]
    inflight: u32,
    /// Set the retain flag.
    #[arg(long)]
    retain: bool,
}

/// What subscribers do.
#[derive(Debug, Clone, Args)]
struct SubscribeArgs {
    /// Subscriber connections.
    #[arg(long, default_value_t = 1)]
    subscribers: usize,
    /// Filter pattern (`%i`, `%c` as for topics; `$share/g/...` for a
    /// shared group).
    #[arg(long = "sub-topic", default_value = "bench/#")]
    sub_topic: String,
    /// Subscription QoS.
    #[arg(long = "sub-qos", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    sub_qos: u8,
}

fn qos(value: u8) -> QoS {
    QoS::from_bits(value).unwrap_or(QoS::AtMostOnce)
}

impl CommonArgs {
    fn version(&self) -> ProtocolVersion {
        match self.version {
            Version::V3 => ProtocolVersion::V3_1_1,
            Version::V5 => ProtocolVersion::V5,
        }
    }

    /// The source addresses, in the order clients take them.
    fn sources(&self) -> Vec<IpAddr> {
        if !self.ifaddr.is_empty() {
            return self.ifaddr.clone();
        }
        (1..=self.sources.max(1))
            .map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
            .collect()
    }
}

/// Runs `girder bench ...`.
pub(crate) fn run(args: BenchArgs) -> ExitCode {
    if let BenchCommand::Report {
        dir,
        markdown,
        png,
        subject,
        brokers,
        font,
    } = args.command.as_ref()
    {
        let (markdown, png) = (markdown.as_deref(), png.as_deref());
        return exit(report::run(dir, markdown, png, subject, brokers, font));
    }
    raise_open_file_limit();
    let threads = match args.command.as_ref() {
        BenchCommand::Conn { common, .. }
        | BenchCommand::Pub { common, .. }
        | BenchCommand::Sub { common, .. }
        | BenchCommand::Pubsub { common, .. }
        | BenchCommand::Storm { common, .. } => common.threads.max(1),
        BenchCommand::Report { .. } => 1,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return exit(Err(err.into())),
    };
    exit(runtime.block_on(scenario::run(*args.command)))
}

fn exit(result: Result<(), BenchError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("girder bench: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Lifts the soft limit on open files to the hard limit: every connection
/// is a file.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => eprintln!("girder bench: open files limit {limit}"),
        Err(err) => eprintln!("girder bench: cannot raise the open files limit: {err}"),
    }
}
