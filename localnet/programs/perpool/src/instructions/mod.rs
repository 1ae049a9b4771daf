pub mod init;
pub mod transfer_tokens;

pub use init::*;
pub use transfer_tokens::*;
