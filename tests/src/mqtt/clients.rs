//! rumqttc clients (MQTT 5 and 3.1.1) whose event loops run in a task and
//! forward events to a channel.

use super::*;

/// A rumqttc MQTT 5 client whose event loop runs in a task.
#[derive(Debug)]
pub struct V5Client {
    /// The client handle.
    pub client: rumqttc::v5::AsyncClient,
    events: mpsc::UnboundedReceiver<std::result::Result<rumqttc::v5::Event, String>>,
    task: JoinHandle<()>,
}

impl V5Client {
    /// Connects with `opts` and returns the client and its CONNACK.
    pub async fn connect(
        opts: rumqttc::v5::MqttOptions,
    ) -> Result<(Self, rumqttc::v5::mqttbytes::v5::ConnAck)> {
        let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(opts, 64);
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let ev = eventloop.poll().await.map_err(|e| e.to_string());
                let stop = ev.is_err();
                if tx.send(ev).is_err() || stop {
                    break;
                }
            }
        });
        let mut c = V5Client {
            client,
            events,
            task,
        };
        let ack = c
            .next_incoming(|p| match p {
                rumqttc::v5::Incoming::ConnAck(a) => Some(a),
                _ => None,
            })
            .await?;
        Ok((c, ack))
    }

    /// Waits up to [`WAIT`] for an incoming packet that `pick` selects.
    pub async fn next_incoming<T>(
        &mut self,
        mut pick: impl FnMut(rumqttc::v5::Incoming) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + WAIT;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .context("no expected packet within the deadline")?
                .ok_or_else(|| anyhow!("event loop ended"))?;
            match ev.map_err(|e| anyhow!("connection error: {e}"))? {
                rumqttc::v5::Event::Incoming(p) => {
                    if let Some(t) = pick(p) {
                        return Ok(t);
                    }
                }
                rumqttc::v5::Event::Outgoing(_) => {}
            }
        }
    }

    /// The next PUBLISH within [`WAIT`].
    pub async fn next_publish(&mut self) -> Result<rumqttc::v5::mqttbytes::v5::Publish> {
        self.next_incoming(|p| match p {
            rumqttc::v5::Incoming::Publish(p) => Some(p),
            _ => None,
        })
        .await
    }

    /// Waits for the next SUBACK and returns its reason codes.
    pub async fn next_suback(
        &mut self,
    ) -> Result<Vec<rumqttc::v5::mqttbytes::v5::SubscribeReasonCode>> {
        self.next_incoming(|p| match p {
            rumqttc::v5::Incoming::SubAck(a) => Some(a.return_codes),
            _ => None,
        })
        .await
    }

    /// The next event or error within `limit` (`None` on timeout).
    pub async fn next_event_within(
        &mut self,
        limit: Duration,
    ) -> Option<std::result::Result<rumqttc::v5::Event, String>> {
        timeout(limit, self.events.recv()).await.ok().flatten()
    }
}

impl Drop for V5Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A rumqttc MQTT 3.1.1 client whose event loop runs in a task.
#[derive(Debug)]
pub struct V4Client {
    /// The client handle.
    pub client: rumqttc::AsyncClient,
    events: mpsc::UnboundedReceiver<std::result::Result<rumqttc::Event, String>>,
    task: JoinHandle<()>,
}

impl V4Client {
    /// Connects with `opts` and returns the client and its CONNACK.
    pub async fn connect(opts: rumqttc::MqttOptions) -> Result<(Self, rumqttc::ConnAck)> {
        let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 64);
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let ev = eventloop.poll().await.map_err(|e| e.to_string());
                let stop = ev.is_err();
                if tx.send(ev).is_err() || stop {
                    break;
                }
            }
        });
        let mut c = V4Client {
            client,
            events,
            task,
        };
        let ack = c
            .next_incoming(|p| match p {
                rumqttc::Incoming::ConnAck(a) => Some(a),
                _ => None,
            })
            .await?;
        Ok((c, ack))
    }

    /// Waits up to [`WAIT`] for an incoming packet that `pick` selects.
    pub async fn next_incoming<T>(
        &mut self,
        mut pick: impl FnMut(rumqttc::Incoming) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + WAIT;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .context("no expected packet within the deadline")?
                .ok_or_else(|| anyhow!("event loop ended"))?;
            match ev.map_err(|e| anyhow!("connection error: {e}"))? {
                rumqttc::Event::Incoming(p) => {
                    if let Some(t) = pick(p) {
                        return Ok(t);
                    }
                }
                rumqttc::Event::Outgoing(_) => {}
            }
        }
    }

    /// The next PUBLISH within [`WAIT`].
    pub async fn next_publish(&mut self) -> Result<rumqttc::Publish> {
        self.next_incoming(|p| match p {
            rumqttc::Incoming::Publish(p) => Some(p),
            _ => None,
        })
        .await
    }

    /// Waits for the next SUBACK and returns its return codes.
    pub async fn next_suback(&mut self) -> Result<Vec<rumqttc::SubscribeReasonCode>> {
        self.next_incoming(|p| match p {
            rumqttc::Incoming::SubAck(a) => Some(a.return_codes),
            _ => None,
        })
        .await
    }
}

impl Drop for V4Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}
