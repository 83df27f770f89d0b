//! A map from a type to one value of it: each system keeps its inventory section here (and
//! the prepare step the values it read from the nodes), so the core names no system; and
//! the trait through which a system reads its section.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use super::{Claims, Collector, Fields, Inventory};

/// A system's part of the inventory: the top-level keys it owns, read into its section,
/// checked across the inventory, and the secrets it holds.
pub trait SectionReader: Sync {
    /// The system's name, e.g. `wireguard`.
    fn name(&self) -> &'static str;

    /// The top-level inventory keys it reads (none for a system derived from others).
    fn keys(&self) -> &'static [&'static str];

    /// Reads its keys of the top-level object into its section, recording every problem
    /// with its JSON path. Must store its section even when its keys are absent.
    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections);

    /// Checks across the inventory once every section is read (node references,
    /// duplicates), and claims the ports its system listens on.
    fn validate(&self, inv: &Inventory, c: &mut Collector, claims: &mut Claims);

    /// The secret values its section holds: never printed.
    fn secrets(&self, inv: &Inventory) -> Vec<String>;

    /// A count for `validate`'s summary, e.g. `2 route(s)`.
    fn summary(&self, inv: &Inventory) -> Option<String>;
}

/// One value per type.
#[derive(Clone, Default)]
pub struct Sections(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl Sections {
    /// Stores `value`, replacing the one of its type.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was stored.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>())?.downcast_ref()
    }
}

impl std::fmt::Debug for Sections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sections({} stored)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::Sections;

    #[test]
    fn each_type_has_its_own_value() {
        let mut s = Sections::default();
        s.insert(vec![1u16]);
        s.insert(String::from("x"));
        s.insert(vec![2u16]);
        assert_eq!(s.get::<Vec<u16>>(), Some(&vec![2]));
        assert_eq!(s.get::<String>().map(String::as_str), Some("x"));
        assert!(s.get::<u8>().is_none());
    }
}
