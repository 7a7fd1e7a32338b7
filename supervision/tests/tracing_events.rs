//! The supervisor's `tracing` events carry stable snake_case names, in order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use girder_supervision::*;
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::Layer;

/// Records the name of every event from this crate.
#[derive(Clone, Default)]
struct Names(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for Names {
    fn on_event(&self, event: &tracing::Event<'_>, _: LayerContext<'_, S>) {
        let meta = event.metadata();
        if meta.target().starts_with("girder_supervision") {
            self.0.lock().unwrap().push(meta.name().to_owned());
        }
    }
}

struct Crashy;

impl Actor for Crashy {
    type Context = Context<Self>;
}

#[actix_rt::test]
async fn lifecycle_events_are_named_for_tests_to_match() {
    let names = Names::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(names.clone()));

    let root = SupervisorSpec::new(
        SupFlags::new(Strategy::OneForOne).intensity(1, Duration::from_secs(10)),
    )
    .child(ChildSpec::worker("w", || Crashy))
    .start_root()
    .await
    .unwrap();
    for _ in 0..2 {
        let w = root.which_children().await.unwrap()[0].pid.clone().unwrap();
        w.exit(ExitReason::error("boom"));
        w.wait().await;
        if root.pid().is_alive() {
            // wait for the restart before crashing again
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while root.which_children().await.unwrap()[0].pid.as_ref() == Some(&w) {
                assert!(std::time::Instant::now() < deadline);
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    root.wait().await;
    let seen: Vec<String> = names
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|n| !n.starts_with("event ") && n.as_str() != "process_panicked")
        .cloned()
        .collect();
    assert_eq!(
        seen,
        [
            "child_started",
            "child_exited",
            "child_restarted",
            "child_exited",
            "max_restart_intensity_reached",
            "supervisor_shutdown",
        ]
    );
}
