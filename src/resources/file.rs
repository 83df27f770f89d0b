//! Plain config files: no validator of their own; the unit that reads them is checked
//! when it is (re)started.

use super::{KindOps, Resource};

/// Behaviour of [`super::FILE`].
pub struct FileOps;

impl KindOps for FileOps {
    fn validate(&self, _res: &Resource, _staged: &str) -> Option<String> {
        None
    }
}
