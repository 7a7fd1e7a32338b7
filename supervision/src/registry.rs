//! A local name registry (Erlang's `register/2`, `whereis/1`, `unregister/1`).
//!
//! A name maps to one live process; the name is freed when the process ends.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use actix::{Actor, Addr};
use parking_lot::Mutex;

use crate::error::SupervisionError;
use crate::pid::{NameError, Pid};

/// A table of names to processes. Cloning shares the table. Most code uses
/// [`Registry::global`]; separate instances let in-process tests run several nodes.
#[derive(Clone, Default)]
pub struct Registry {
    names: Arc<Mutex<HashMap<String, Pid>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry of this node (one per OS process).
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(Registry::new)
    }

    /// Registers `name` for `pid`. Fails if the name is taken by a live process, if the
    /// process already has a name here, or if it is dead.
    pub fn register(&self, name: &str, pid: &Pid) -> Result<(), SupervisionError> {
        let mut names = self.names.lock();
        if let Some(holder) = names.get(name) {
            if holder.is_alive() {
                return Err(SupervisionError::NameTaken(name.to_owned()));
            }
        }
        match pid.add_name(self, name) {
            Ok(()) => {
                names.insert(name.to_owned(), pid.clone());
                Ok(())
            }
            Err(NameError::Dead) => Err(SupervisionError::NoProc),
            Err(NameError::HasName(current)) => Err(SupervisionError::AlreadyRegistered {
                pid: pid.to_string(),
                name: current,
            }),
        }
    }

    /// The process registered under `name`, if any.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.names
            .lock()
            .get(name)
            .filter(|p| p.is_alive())
            .cloned()
    }

    /// The address of the actor registered under `name`, if it is an `A`.
    pub fn whereis_addr<A: Actor>(&self, name: &str) -> Option<Addr<A>> {
        self.whereis(name)?.addr::<A>()
    }

    /// Removes `name`; returns the process it named.
    pub fn unregister(&self, name: &str) -> Option<Pid> {
        let pid = self.names.lock().remove(name)?;
        pid.remove_name(self);
        Some(pid)
    }

    /// All registered names, sorted.
    pub fn registered(&self) -> Vec<String> {
        let mut v: Vec<String> = self.names.lock().keys().cloned().collect();
        v.sort();
        v
    }

    pub(crate) fn remove_if(&self, name: &str, pid: &Pid) {
        let mut names = self.names.lock();
        if names.get(name) == Some(pid) {
            names.remove(name);
        }
    }

    pub(crate) fn same(&self, other: &Registry) -> bool {
        Arc::ptr_eq(&self.names, &other.names)
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("names", &self.names.lock().len())
            .finish()
    }
}
