//! `proto::naming` served over a [`Registry`] and the capability moves of [`CapOps`].

use crate::registry::{NotFound, Registry};
use proto::naming::{Binding, Error, Server};
use proto::{CapSlot, ComponentId, Name};
use sysdesc::System;

/// Naming has no free slot for another capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoRoom;

/// The capability operations naming needs; on seL4, CNode moves, mints and deletes.
///
/// The shell empties its receive slot after every request, so a capability not moved out by
/// [`CapOps::keep`] is dropped; and it deletes the slot [`CapOps::mint`] returned once the reply
/// carrying it has been sent (seL4 copies a transferred capability).
pub trait CapOps {
    /// Names an endpoint naming holds.
    type Handle: Copy;
    /// Moves the endpoint received with a request (in `received`) into naming's own storage.
    ///
    /// `Ok(handle)`; `Err(NoRoom)` if naming has no free slot.
    fn keep(&mut self, received: CapSlot) -> Result<Self::Handle, NoRoom>;
    /// A copy of `endpoint` badged with `badge`, in a slot to send with the reply.
    ///
    /// `Ok(slot)`; `Err(NoRoom)` if naming has no free slot.
    fn mint(&mut self, endpoint: Self::Handle, badge: u64) -> Result<CapSlot, NoRoom>;
    /// Deletes an endpoint naming no longer needs (replaced or withdrawn).
    fn release(&mut self, endpoint: Self::Handle);
}

/// The naming service: a [`Registry`] served as `proto::naming`.
///
/// Clients are identified by their badge ([`proto::client`]); the endpoints handed to them
/// are minted with their own badge ([`proto::badge`]) so providers know who calls.
#[derive(Debug)]
pub struct NamingServer<C: CapOps> {
    registry: Registry<C::Handle>,
    caps: C,
    proc: Option<ComponentId>,
}

impl<C: CapOps> NamingServer<C> {
    /// A server for `system` with no services registered yet.
    pub fn new(system: System, caps: C) -> NamingServer<C> {
        let proc = system.component_id("proc");
        NamingServer {
            registry: Registry::new(system),
            caps,
            proc,
        }
    }

    /// The registry.
    pub fn registry(&self) -> &Registry<C::Handle> {
        &self.registry
    }

    /// The capability operations.
    pub fn caps(&self) -> &C {
        &self.caps
    }

    /// The capability operations, mutably (for the shell's housekeeping between requests).
    pub fn caps_mut(&mut self) -> &mut C {
        &mut self.caps
    }

    /// Registers `endpoint` (already in naming's storage) for naming's own component, or any
    /// other, bypassing the badge check: for the shell to register `naming` itself at start.
    ///
    /// `Ok(generation)`; `Err(Error::Denied)` if `provider` does not provide `service`.
    pub fn register_as(
        &mut self,
        provider: ComponentId,
        service: &str,
        endpoint: C::Handle,
    ) -> Result<u64, Error> {
        let registered = self
            .registry
            .register(provider, service, endpoint)
            .map_err(|_| Error::Denied)?;
        if let Some(old) = registered.replaced {
            self.caps.release(old);
        }
        Ok(registered.generation)
    }

    /// Withdraws and releases every service of `id` (it died); returns how many there were.
    pub fn component_died(&mut self, id: ComponentId) -> usize {
        let endpoints = self.registry.unregister_all(id);
        for &e in &endpoints {
            self.caps.release(e);
        }
        endpoints.len()
    }
}

impl<C: CapOps> Server for NamingServer<C> {
    fn register(&mut self, badge: u64, name: Name, endpoint: CapSlot) -> Result<(), Error> {
        let provider = proto::client(badge).ok_or(Error::Denied)?;
        if !self.registry.may_register(provider, &name) {
            return Err(Error::Denied);
        }
        let kept = self.caps.keep(endpoint).map_err(|_| Error::Exhausted)?;
        self.register_as(provider, &name, kept).map(|_| ())
    }

    fn lookup(&mut self, badge: u64, name: Name) -> Result<Binding, Error> {
        let client = proto::client(badge).ok_or(Error::NotFound)?;
        let found = self
            .registry
            .lookup(client, &name)
            .map_err(|NotFound| Error::NotFound)?;
        let endpoint = self
            .caps
            .mint(found.endpoint, proto::badge(client))
            .map_err(|_| Error::Exhausted)?;
        Ok(Binding {
            endpoint,
            generation: found.generation,
        })
    }

    fn unregister(&mut self, badge: u64, name: Name) -> Result<(), Error> {
        let provider = proto::client(badge).ok_or(Error::NotFound)?;
        let endpoint = self
            .registry
            .unregister(provider, &name)
            .map_err(|NotFound| Error::NotFound)?;
        self.caps.release(endpoint);
        Ok(())
    }

    fn withdraw(&mut self, badge: u64, id: ComponentId) -> Result<u32, Error> {
        if proto::client(badge).is_none() || proto::client(badge) != self.proc {
            return Err(Error::Denied);
        }
        Ok(u32::try_from(self.component_died(id)).unwrap_or(u32::MAX))
    }
}
