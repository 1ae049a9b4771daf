pub mod custody;
pub mod multisig;
pub mod oracle;
pub mod perpool;
pub mod pool;
pub mod position;
pub mod risk;

pub use custody::*;
pub use multisig::*;
pub use oracle::*;
pub use perpool::*;
pub use pool::*;
pub use position::*;
pub use risk::*;
