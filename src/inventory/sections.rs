//! A map from a type to one value of it: each role keeps its inventory section here (and
//! the prepare step the values it read from the nodes), so the core names no role.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

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
