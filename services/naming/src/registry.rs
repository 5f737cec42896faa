//! The table of registered services, checked against the system description.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use sysdesc::{ComponentId, System};

/// The caller may not register that service: the description does not name it as the provider
/// (or there is no such service).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denied;

/// No such service, not registered, or the client is not routed to it: indistinguishable on
/// purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotFound;

/// What a successful registration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registered<H> {
    /// The service's generation now: 1 for the first registration, one more each time after.
    pub generation: u64,
    /// The endpoint this registration replaced, for the caller to release.
    pub replaced: Option<H>,
}

/// A service a client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found<H> {
    /// The provider's registered endpoint.
    pub endpoint: H,
    /// The service's generation.
    pub generation: u64,
    /// The providing component.
    pub provider: ComponentId,
}

#[derive(Debug)]
struct Entry<H> {
    provider: ComponentId,
    endpoint: Option<H>,
    generation: u64,
}

/// The services registered so far, with the description that says who may do what.
///
/// `H` is whatever names a stored endpoint capability (on seL4, naming's own slot for it).
#[derive(Debug)]
pub struct Registry<H> {
    system: System,
    services: BTreeMap<String, Entry<H>>,
}

impl<H: Copy> Registry<H> {
    /// An empty registry for `system` (a validated description).
    pub fn new(system: System) -> Registry<H> {
        Registry {
            system,
            services: BTreeMap::new(),
        }
    }

    /// The description the registry checks against.
    pub fn system(&self) -> &System {
        &self.system
    }

    /// Whether `provider` is the component the description says provides `service`.
    pub fn may_register(&self, provider: ComponentId, service: &str) -> bool {
        self.system.provider_id(service) == Some(provider)
    }

    /// Registers `endpoint` as `service`, provided by `provider`.
    ///
    /// `Ok(Registered)` with the new generation and the endpoint it replaced (a provider
    /// registering again after a restart); `Err(Denied)` unless the description names
    /// `provider` as the service's provider.
    pub fn register(
        &mut self,
        provider: ComponentId,
        service: &str,
        endpoint: H,
    ) -> Result<Registered<H>, Denied> {
        if !self.may_register(provider, service) {
            return Err(Denied);
        }
        let entry = self.services.entry(String::from(service)).or_insert(Entry {
            provider,
            endpoint: None,
            generation: 0,
        });
        entry.generation += 1;
        Ok(Registered {
            generation: entry.generation,
            replaced: entry.endpoint.replace(endpoint),
        })
    }

    /// The endpoint of `service` for `client`.
    ///
    /// `Ok(Found)`; `Err(NotFound)` if the description does not route `client` to `service`,
    /// if no component provides it, or if it is not registered (now).
    pub fn lookup(&self, client: ComponentId, service: &str) -> Result<Found<H>, NotFound> {
        if !self.system.may_lookup(client, service) {
            return Err(NotFound);
        }
        let entry = self.services.get(service).ok_or(NotFound)?;
        Ok(Found {
            endpoint: entry.endpoint.ok_or(NotFound)?,
            generation: entry.generation,
            provider: entry.provider,
        })
    }

    /// Withdraws `provider`'s registration of `service`; the generation is kept.
    ///
    /// `Ok(endpoint)` to release; `Err(NotFound)` if `provider` has no registration of it.
    pub fn unregister(&mut self, provider: ComponentId, service: &str) -> Result<H, NotFound> {
        match self.services.get_mut(service) {
            Some(entry) if entry.provider == provider => entry.endpoint.take().ok_or(NotFound),
            _ => Err(NotFound),
        }
    }

    /// Withdraws every registration of `provider` (it died); returns the endpoints to release.
    pub fn unregister_all(&mut self, provider: ComponentId) -> Vec<H> {
        self.services
            .values_mut()
            .filter(|e| e.provider == provider)
            .filter_map(|e| e.endpoint.take())
            .collect()
    }

    /// How many times `service` has been registered (0 if never).
    pub fn generation(&self, service: &str) -> u64 {
        self.services.get(service).map_or(0, |e| e.generation)
    }

    /// The registered services with their providers, in name order.
    pub fn registered(&self) -> impl Iterator<Item = (&str, ComponentId)> + '_ {
        self.services
            .iter()
            .filter(|(_, e)| e.endpoint.is_some())
            .map(|(name, e)| (name.as_str(), e.provider))
    }
}
